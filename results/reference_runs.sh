#!/usr/bin/env bash
# Reruns every figure in results/README.md on the built-in corpus, one run after another
# (concurrent runs would share the 2 cores and distort seconds per epoch).
#   results/reference_runs.sh [zoo] [repeats] [tune] [tune_folds] [serve] [phonemes] [voices]
#   [music] [music_transfer] [bench]   (default: all ten)
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/runs/reference
fit() { python cli.py fit --out "$out" "$@"; }
# gru_attention's figures below were made before its two convolutions
# became its default: `--set conv_layers=0` (`--fix conv_layers=0` in a search) builds the
# model they were made with.

zoo() {  # issue 3: one run per architecture, and the overfit sanity check
  fit --arch dense                 # the seed's baseline: hidden 100,10, dropout 0.5
  # gru_attention's figures in the zoo and the five-seed tables were made at batch 32, lr 1e-3,
  # the default before gru_attention got its own (64, 2e-3).
  fit --arch gru_attention --batch-size 32 --lr 1e-3 --set conv_layers=0
  fit --arch gru
  fit --arch lstm
  fit --arch bilstm
  fit --arch conv1d
  fit --arch cnn2d --features logmel
  fit --arch gru_attention --overfit-batches 3 --epochs 200 --batch-size 32 --lr 1e-3 \
    --set conv_layers=0
  fit --arch cnn2d --features logmel --overfit-batches 3 --epochs 200
}

repeats() {  # issue 5: five seeds each, compared with the baselines
  fit --arch dense --repeats 5
  fit --arch gru_attention --repeats 5 --batch-size 32 --lr 1e-3 --set conv_layers=0
  fit --arch gru_attention --repeats 5 --set conv_layers=0   # its own batch 64, lr 2e-3
}

tune() {  # issue 6: Hyperband over the gru_attention space, then the winner five times
  python cli.py tune --arch gru_attention --max-epochs 9 --name gru_attention-hyperband \
    --fix conv_layers=0
  fit --hparams results/tuning/gru_attention-hyperband/best.json --repeats 5
  fit --hparams results/tuning/gru_attention-hyperband/best.json --epochs 40 --repeats 5
}

tune_folds() {  # issue 20: a search scored on 3 speaker-grouped folds, its winner against the
  # defaults, five seeds each
  local out=results/runs/tune_folds
  # At the defaults' 40 epochs; the figures are of its first Hyperband bracket (52 trials,
  # stopped with Ctrl-C, which exports that bracket's best): the whole search runs on.
  python cli.py tune --folds 3 --max-epochs 40 --name gru_attention-folds3-e40 \
    --fix conv_layers=0
  # The first bracket's winner, trial 0050, as its best.json held it:
  python cli.py fit --arch gru_attention --hidden 256 --layers 2 --dropout 0.2 --lr 1e-3 \
    --batch-size 16 --epochs 40 --repeats 5 --set conv_layers=0 --out "$out"
  python cli.py fit --arch gru_attention --repeats 5 --set conv_layers=0 --out "$out"
  python cli.py compare "$out"
  # (The 9-epoch search of the first table ran at commit f1c4cf4: `tune --folds 3
  # --max-epochs 9`; since 0dd38b1 its trials decay on a cosine and it searches otherwise.)
}

serve() {  # issue 8: export parity of the zoo's gru_attention run on 200 test utterances
  run=$(ls -d "$out"/*-gru_attention-spoken-digits | tail -n 1)
  wavs=$(mktemp -d)
  python cli.py data audio "$wavs/wavs" --count 200
  python bench/export.py "$run" "$wavs/wavs" > results/bench/export.jsonl
}

phonemes() {  # issue 4: frame accuracy on spoken-phonemes, by context window, and labelled whole
  for window in 1 11 21; do
    fit --data spoken-phonemes --arch frame_mlp --set window=$window --batch-size 256 --epochs 15
  done
  fit --data spoken-phonemes --arch bigru_labeller --epochs 15
}

voices() {  # issue 4: Spearman per target of cnn2d on voice-attributes: single-task models,
  # one multitask model, and fine-tuned from an accent classifier
  for task in rate pitch noise rate,pitch,noise accent; do
    fit --data voice-attributes --arch cnn2d --tasks $task --epochs 20
  done
  source=$(ls -d "$out"/*-cnn2d-voice-attributes | tail -n 1)  # the accent run
  python cli.py finetune --from "$source" --tasks rate,pitch,noise --freeze-epochs 5 \
    --epochs 20 --out "$out"
}

music() {  # issue 24: the music course project's experiments on music-genres, 10 epochs each
  local out=results/runs/music
  python bench/music_corpus.py > results/bench/music_corpus.jsonl
  fit --data music-genres --arch lstm --tasks genre --epochs 10
  fit --data music-genres --arch lstm --tasks genre --epochs 10 --beat-sync
  fit --data music-genres --arch lstm --tasks genre --epochs 10 --features chroma
  fit --data music-genres --arch cnn2d --tasks genre --epochs 10
  for task in valence energy danceability valence,energy,danceability; do
    fit --data music-genres --arch cnn2d --tasks $task --epochs 10
  done
  source=$(ls -d "$out"/*-cnn2d-music-genres | head -n 1)  # the genre classifier
  python cli.py finetune --from "$source" --tasks valence,energy,danceability \
    --freeze-epochs 3 --epochs 10 --out "$out"
  rm -f results/music_runs.csv  # compare --csv never replaces a file
  python cli.py compare "$out" --csv results/music_runs.csv
}

music_transfer() {  # issue 24 part 3: the genre classifier's backbone against scratch
  # energy and danceability from 10, 30 and 100 % of the training songs. Every run has the same
  # budget: 10 epochs of at least 50 steps (TrainConfig.min_epoch_steps), so about 500 steps at
  # any fraction. Needs the `music` step's genre classifier.
  local out=results/runs/music_transfer
  source=$(ls -d results/runs/music/*-cnn2d-music-genres | head -n 1)
  for seed in 0 1; do  # the same songs at each fraction for both seeds: only training differs
    for fraction in 0.1 0.3 1.0; do
      python cli.py fit --data music-genres --arch cnn2d --tasks energy,danceability \
        --epochs 10 --train-fraction $fraction --seed $seed --out "$out"
      python cli.py finetune --from "$source" --tasks energy,danceability \
        --freeze-epochs 3 --epochs 10 --train-fraction $fraction --seed $seed --out "$out"
    done
  done
  rm -f results/music_transfer.csv  # compare --csv never replaces a file
  python cli.py compare "$out" --csv results/music_transfer.csv
}

bench() {  # issue 9: on an otherwise idle machine. train, fit_options and tune time today's
  # gru_attention, with its convolutions; the recorded lines were measured without (bench/README.md)
  mkdir -p results/bench
  for b in cli pipeline train features peer fit_options tune; do python "bench/$b.py" > "results/bench/$b.jsonl"; done
}

for step in "${@:-zoo repeats tune tune_folds serve phonemes voices music music_transfer bench}"; do
  for s in $step; do "$s"; done
done
