"""Files and folders found in the user's folders, and the one line that says why one cannot
be read, shared by the readers of audio, images and arrays."""

import errno
import os
from pathlib import Path

from kerasaudio.errors import UserError


def is_file_or_broken_link(path: Path) -> bool:
    """Whether a path found in a folder is a file to read: a file, or a link whose file is
    gone, which reading then names instead of leaving it out without a word."""
    path = Path(path)
    return path.is_file() or (path.is_symlink() and not path.exists())


def files_under(folder: Path) -> list:
    """The files under `folder` at any depth, broken links among them, sorted (see
    `walk_files`)."""
    return sorted(walk_files(folder))


def walk_files(folder: Path):
    """Yields the files under `folder` at any depth, and its broken links, which reading
    then names.

    Links to folders are followed, as a user who made one expects (pathlib's rglob does
    not follow them, and their files were left out without a word); a folder reached
    twice, by a link back up the tree, is walked once.

    Raises:
        UserError: for a folder inside that cannot be read, whose files would be missing.
    """
    walked = set()
    for root, folders, files in os.walk(folder, onerror=_raise_unreadable, followlinks=True):
        real = os.path.realpath(root)
        if real in walked:
            folders.clear()
            continue
        walked.add(real)
        folders.sort()  # a folder reached two ways is named the same way on every machine
        yield from (p for p in (Path(root, name) for name in files) if is_file_or_broken_link(p))


def refuse_one_file_twice(files: list, rule: str) -> None:
    """Raises UserError for a file that links (symbolic or hard) make appear at two places
    of a layout (two classes, or two splits): it would be trained on and tested on, or
    taught as two classes, without a word.

    Args:
        files: the paths found, in order.
        rule: the rule a repeat breaks, for the message ("a recording belongs to one
            class and one split, once").
    """
    first = {}
    for path in files:
        try:
            real = identity(path)
        except OSError:  # a broken link, say: reading it names it
            continue
        if real in first:
            raise UserError(f"{path}: the same file as {first[real]} (through a link); {rule}")
        first[real] = path


def identity(path: Path) -> tuple:
    """What one file is known by, whatever links (symbolic or hard) name it: its device and
    inode, or its real path where the file system gives no inode numbers.

    Raises:
        OSError: if the file cannot be reached.
    """
    stat = os.stat(path)
    if stat.st_ino == 0:
        return (os.path.realpath(path),)
    return stat.st_dev, stat.st_ino


def _raise_unreadable(error: OSError) -> None:
    raise UserError(f"{error.filename}: cannot be read ({error.strerror.lower()})")


def check_readable(path: Path) -> None:
    """Raises the line naming why `path` cannot be read as a file, if it cannot.

    Raises:
        UserError: naming the file, if it is a link to nothing, missing, not a file or not
            readable.
    """
    path = Path(path)
    refuse_broken_link(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: not a file")
    if not os.access(path, os.R_OK):  # the readers would each word it differently
        raise UserError(f"{path}: not readable (permission denied)")


def refuse_broken_link(path: Path) -> None:
    """Raises the line naming a link whose file is gone (or that leads back to itself), and
    where it led, if `path` is one: its absence alone would hide that a link was there.

    Raises:
        UserError: naming the link and its target.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise UserError(f"{path}: a link to {os.readlink(path)}, which "
                        f"{'leads back to itself' if _loops(path) else 'does not exist'}")


def lies_in(root: Path, name) -> bool:
    """Whether the file a list in `root` names (`name` as written: relative to `root`, or
    absolute) lies in `root`: where it leads, or as written without '..', so that a link
    there may lead elsewhere, as links in data folders may. ('..' counts only where it
    leads: the system takes it after following a link, where the text alone would take it
    before.)"""
    written = Path(root) / name
    if Path(os.path.realpath(written)).is_relative_to(os.path.realpath(root)):
        return True
    return ".." not in Path(name).parts and Path(
        os.path.abspath(written)).is_relative_to(os.path.abspath(root))


def _loops(link: Path) -> bool:
    """Whether following `link` comes back to it (a -> b -> a) instead of ending."""
    try:
        link.resolve(strict=True)
    except RuntimeError:  # Python 3.11-3.12; OSError(ELOOP) from 3.13
        return True
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def subfolders(folder: Path) -> list:
    """The visible subfolders of `folder`, sorted: hidden ones (.ipynb_checkpoints, .git)
    are no classes.

    Raises:
        UserError: for a visible link in `folder`, named as folders are (without a suffix),
            to something gone: a class folder moved away, which would otherwise be left out
            without a word. (A dangling README.md link is no class; it is passed over, as
            any file beside the classes is.)
    """
    visible = sorted(p for p in Path(folder).iterdir() if not p.name.startswith("."))
    for path in visible:
        if not path.suffix:
            refuse_broken_link(path)
    return [p for p in visible if p.is_dir()]
