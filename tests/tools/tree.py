#!/usr/bin/env python3
"""Trees whose names are any bytes and whose paths may exceed PATH_MAX.

  tree.py make-odd DIR      fills DIR with the names that broke arca 0.1: Latin-1 and
                            other non-UTF-8 names (a file, a directory, a symlink),
                            a symlink whose target is not UTF-8, names with a newline,
                            an escape sequence, '%' and a backslash, a file whose
                            relative name is 4090 bytes and one of about 5000 bytes
                            (deeper than PATH_MAX allows as one path)
  tree.py digest DIR        one line per entry (type, mode, size, sha256 or link
                            target; names as hex), sorted: two trees are equal when
                            their digests are
Everything goes through directory fds, so no path is ever longer than a name.
"""
import hashlib, os, stat, sys


def mkdirs(top, parts):
    """mkdir -p of the byte components below top; returns an fd of the last."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for p in parts:
        try:
            os.mkdir(p, 0o755, dir_fd=fd)
        except FileExistsError:
            pass
        nfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    return fd


def put(dirfd, name, data, mode=0o644):
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode, dir_fd=dirfd)
    os.write(fd, data)
    os.close(fd)


def make_odd(top):
    top = os.fsencode(top)
    d = mkdirs(top, [])
    put(d, b"caf\xe9 latin1.txt", b"latin-1 name\n")
    put(d, b"new\nline", b"a newline in the name\n")
    put(d, b"esc \x1b[31mred\x1b[0m", b"an escape sequence in the name\n")
    put(d, b"100% sure \\ back", b"percent and backslash\n")
    put(d, b"\xff\xfe invalid", b"no UTF-8 at all\n")
    sub = mkdirs(top, [b"r\xe9pertoire \xe9t\xe9"])
    put(sub, b"inside", b"in a non-UTF-8 directory\n")
    os.close(sub)
    os.symlink(b"caf\xe9 latin1.txt", b"lien \xe9", dir_fd=d)          # non-UTF-8 name and target
    os.symlink(b"target \xe9\nwith newline", b"dangling", dir_fd=d)   # non-UTF-8 target, dangling
    # a relative name of 4090 bytes: 16 components of 250 bytes, then a leaf
    comps = [bytes([0x61 + i]) * 250 for i in range(16)]
    deep = mkdirs(top, [b"long"] + comps)
    leaf_len = 4090 - (len(b"long/") + 16 * 251)
    put(deep, b"L" * leaf_len, b"a 4090-byte relative name\n")
    os.close(deep)
    # about 5000 bytes: deeper than PATH_MAX (4096) as one path
    deeper = mkdirs(top, [b"longer"] + [bytes([0x41 + i]) * 250 for i in range(20)])
    put(deeper, b"end", b"a name longer than PATH_MAX\n")
    os.close(deeper)
    os.close(d)


def walk(dirfd, rel, out):
    for name in sorted(os.fsencode(n) for n in os.listdir(dirfd)):
        st = os.lstat(name, dir_fd=dirfd)
        path = rel + [name]
        key = b"/".join(path).hex()
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            out.append(f"dir {mode:o} {key}")
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)
            walk(fd, path, out)
            os.close(fd)
        elif stat.S_ISLNK(st.st_mode):
            out.append(f"link {key} -> {os.readlink(name, dir_fd=dirfd).hex()}")
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dirfd)
            h = hashlib.sha256()
            while True:
                b = os.read(fd, 1 << 20)
                if not b:
                    break
                h.update(b)
            os.close(fd)
            out.append(f"file {mode:o} {st.st_size} {h.hexdigest()} {key}")
        else:
            out.append(f"other {key}")


def digest(top):
    fd = os.open(os.fsencode(top), os.O_RDONLY | os.O_DIRECTORY)
    out = []
    walk(fd, [], out)
    os.close(fd)
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make-odd", "digest"):
        sys.exit(__doc__)
    {"make-odd": make_odd, "digest": digest}[sys.argv[1]](sys.argv[2])
