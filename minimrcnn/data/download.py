"""Download and unpack COCO 2017: `python -m minimrcnn.data.download --root data/coco`.

    data/coco/train2017/*.jpg                           118,287 images (18.0 GiB zip)
    data/coco/val2017/*.jpg                               5,000 images (0.76 GiB zip)
    data/coco/annotations/instances_{train,val}2017.json  (0.24 GiB zip, with captions and keypoints)

Each archive is streamed into `<name>.zip.part`. An interrupted download resumes where it stopped: the
next run asks the server only for the missing bytes (an HTTP Range request). A finished file is checked
against its expected size and MD5 before it loses the `.part` suffix, then extracted once (a marker file
records that). Run the same command again after any failure.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from minimrcnn.errors import DataError

BASE_URL = "http://images.cocodataset.org"


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative to the base URL
    size: int | None  # bytes, None if unknown
    md5: str | None  # hex digest, None if unknown: then we only print the one we compute


# The sizes and MD5s published for the official archives (as used by many COCO download scripts).
COCO_FILES = {
    "train2017": RemoteFile("zips/train2017.zip", 19_336_861_798, "cced6f7f71b7629ddf16f17bbcfab6b2"),
    "val2017": RemoteFile("zips/val2017.zip", 815_585_330, "442b8da7639aecaf257c1dceb8ba8c80"),
    "annotations": RemoteFile(
        "annotations/annotations_trainval2017.zip", 252_907_541, "f4bbac642086de4f52a3fdda2de5fa2c"
    ),
}
CHUNK = 1 << 20  # bytes per read


def fetch(
    url: str,
    dest: Path,
    size: int | None = None,
    md5: str | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest`, resuming `dest.part` if present; verify size and MD5; return `dest`."""
    dest = Path(dest)
    if dest.is_file():  # only verified files ever get their final name
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:  # longer than the real file: cannot be a prefix of it
        part.unlink()
        offset = 0
    if size is None or offset < size:
        _check_disk_space(dest.parent, (size - offset) if size is not None else 0)
        _download(url, part, offset, size, timeout, progress)
    _verify(part, dest.name, size, md5)
    os.replace(part, dest)
    return dest


def _download(url: str, part: Path, offset: int, size: int | None, timeout: float, progress: bool) -> None:
    """Append bytes offset.. of `url` to `part` (all of it if the server ignores the Range header)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # "range not satisfiable": the part file already holds everything
            return
        raise DataError(f"{url}: download failed (HTTP {e.code} {e.reason})") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"{url}: download failed ({reason}); run the same command again to retry") from None

    with response:
        if response.status == 206:  # partial content: the server resumes at `offset`
            match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != offset:
                raise DataError(f"{url}: server answered the resume request with a different byte range")
            total = int(match.group(2)) if match.group(2) != "*" else None
            mode = "ab"
        else:  # 200: the whole file from the start
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
            offset, mode = 0, "wb"
        if size is not None and total is not None and total != size:
            raise DataError(f"{url}: server reports {total} bytes, expected {size}")
        bar = tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
            disable=not progress,
        )
        try:
            with open(part, mode) as f, bar:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as e:  # connection reset, timeout, ...
            got, why = part.stat().st_size, type(e).__name__
            message = f"{url}: download interrupted at {got} bytes ({why}); run again to resume"
            raise DataError(message) from None
    got = part.stat().st_size
    if total is not None and got != total:  # the connection closed early without an error
        raise DataError(f"{url}: download interrupted at {got} of {total} bytes; run again to resume")


def _verify(part: Path, name: str, size: int | None, md5: str | None) -> None:
    got = part.stat().st_size
    if size is not None and got != size:
        raise DataError(f"{part}: {got} bytes, expected {size}; run again to resume")
    digest = file_md5(part)
    if md5 is None:
        print(f"{name}: {got} bytes, md5 {digest} (no published checksum to compare with)")
    elif digest != md5:
        part.unlink()
        raise DataError(f"{name}: MD5 mismatch (expected {md5}, got {digest}); deleted, run again to retry")


def file_md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def extract(archive: Path, root: Path, progress: bool = True) -> None:
    """Unzip `archive` into `root` once; a marker file next to the archive records that it was done."""
    marker = _marker(archive)
    if marker.exists():
        return
    try:
        with zipfile.ZipFile(archive) as zf:
            members = tqdm(zf.infolist(), desc=f"extract {archive.name}", unit="file", disable=not progress)
            for member in members:
                zf.extract(member, root)  # zipfile drops "..", absolute paths and drive letters
    except zipfile.BadZipFile as e:
        raise DataError(f"{archive}: not a valid zip file ({e}); delete it and run again") from None
    marker.touch()


def _marker(archive: Path) -> Path:
    return archive.with_name(f".{archive.name}.extracted")


def _check_disk_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        need_gib, free_gib = needed / 2**30, free / 2**30
        raise DataError(f"{folder}: not enough disk space (need {need_gib:.1f} GiB, {free_gib:.1f} GiB free)")


def download_coco(
    root: str | Path,
    splits: tuple[str, ...] | list[str] = ("train2017", "val2017"),
    base_url: str = BASE_URL,
    delete_zips: bool = False,
    progress: bool = True,
) -> Path:
    """Fetch and extract the image archives of `splits` and the annotations into `root`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name in [*splits, "annotations"]:
        if name not in COCO_FILES:
            raise DataError(f"--splits: unknown split {name!r}; expected one of train2017, val2017")
        remote = COCO_FILES[name]
        archive = root / Path(remote.path).name
        if _marker(archive).exists():  # extracted by an earlier run (the zip may be gone)
            continue
        url = f"{base_url.rstrip('/')}/{remote.path}"
        fetch(url, archive, remote.size, remote.md5, progress=progress)
        extract(archive, root, progress=progress)
        if delete_zips:
            archive.unlink()
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minimrcnn.data.download",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--root", default="data/coco", help="where train2017/, val2017/, annotations/ go")
    parser.add_argument("--base-url", default=BASE_URL, help="a mirror laid out like the official site")
    splits = ["train2017", "val2017"]
    parser.add_argument("--splits", nargs="+", default=splits, choices=splits, help="image archives to get")
    parser.add_argument("--delete-zips", action="store_true", help="delete each archive once it is extracted")
    args = parser.parse_args(argv)
    try:
        root = download_coco(args.root, args.splits, args.base_url, args.delete_zips)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"COCO is ready in {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
