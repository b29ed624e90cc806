#!/usr/bin/env python3
"""The build reads only what a fresh Debian 12 gets from scripts/setup.

    check_build_inputs.py BUILD_DIR SOURCE_DIR [--without PACKAGE ...]

Collects every file from outside the repository that the build read or linked:
- the files named in CMakeCache.txt (what configure found: libraries, tools);
- the CMake files configure read (CMAKE_MAKEFILE_DEPENDS: package configs, find modules);
- every header in the compilers' dependency files (*.d);
- the shared libraries the binaries and plugins load (ldd).
Each must belong to a Debian package that a fresh minimal Debian 12 has after
scripts/setup: the base system (Essential and Priority: required packages, and apt, as
`debootstrap --variant=minbase` makes it), the packages in scripts/debian-packages, and
everything they reach through hard dependencies (Depends, Pre-Depends; of alternatives the
first, as apt picks it). Recommends do not count: setup installs without them. A file
outside that set fails the check, named with its package and where the build met it.
/usr/local/cuda is exempt (the toolkit is optional and not a Debian package).

--without PACKAGE checks as if scripts/debian-packages lacked PACKAGE (the test suite
uses it to show the check would catch a missing package: ocl-icd-opencl-dev, whose
absence once broke every fresh machine while every developer's machine passed).

Exit 0 when every file is accounted for, 1 otherwise, 77 (skipped) without dpkg.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

# CMakeCache entries that name tools CMake notices but the build never runs: CTest's
# dashboard tools (memory checking, version control) and pkg-config, which find modules
# probe quietly (a library found through it shows up as a library below).
OPTIONAL_TOOLS = {"MEMORYCHECK_COMMAND", "COVERAGE_COMMAND", "GITCOMMAND", "SVNCOMMAND", "HGCOMMAND", "CVSCOMMAND",
                  "BZRCOMMAND", "P4COMMAND", "PKG_CONFIG_EXECUTABLE"}


def read_package_list(source):
    names = []
    with open(os.path.join(source, "scripts/debian-packages")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    return names


def installed_packages():
    """name -> {essential, priority, provides, depends (list of alternative lists)}."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Status}\t${Essential}\t${Priority}\t${Provides}\t"
                          "${Pre-Depends}\t${Depends}\n"], capture_output=True, text=True, check=True).stdout
    packages = {}

    def names(field):
        clauses = []
        for clause in field.split(","):
            alternatives = [re.sub(r"[\s(].*", "", a.strip()).split(":")[0] for a in clause.split("|")]
            alternatives = [a for a in alternatives if a]
            if alternatives:
                clauses.append(alternatives)
        return clauses

    for line in out.splitlines():
        name, status, essential, priority, provides, pre, depends = (line.split("\t") + [""] * 7)[:7]
        if status.split()[-1:] != ["installed"]:  # "install ok installed", "hold ok installed"
            continue
        packages[name] = {"essential": essential == "yes", "priority": priority,
                          "provides": [p[0] for p in names(provides)], "depends": names(pre) + names(depends)}
    return packages


def closure(roots, packages):
    """The packages apt installs for `roots` on an empty machine, as far as this machine shows."""
    providers = {}
    for name, p in packages.items():
        for v in p["provides"]:
            providers.setdefault(v, []).append(name)
    reached, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        targets = [name] if name in packages else providers.get(name, [])
        for t in targets:
            if t in reached:
                continue
            reached.add(t)
            for alternatives in packages[t]["depends"]:
                todo.append(alternatives[0])  # apt takes the first alternative
    return reached


def path_owners():
    owners = {}
    for listing in glob.glob("/var/lib/dpkg/info/*.list"):
        package = os.path.basename(listing)[:-5].split(":")[0]
        with open(listing, errors="replace") as f:
            for line in f:
                owners.setdefault(line.rstrip("\n"), set()).add(package)
    return owners


def owners_of(path, owners):
    """dpkg knows a file by the path its package ships: try the usr-merged and resolved forms."""
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        for a, b in (("/usr/lib/", "/lib/"), ("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/")):
            if p.startswith(a):
                candidates.append(b + p[len(a):])
            elif p.startswith(b):
                candidates.append(a + p[len(b):])
    for c in candidates:
        if c in owners:
            return owners[c]
    return set()


def build_inputs(build):
    """path -> where the build met it (the first place)."""
    seen = {}

    def note(path, where):
        path = os.path.normpath(path)
        if os.path.isfile(path):
            seen.setdefault(path, where)

    with open(os.path.join(build, "CMakeCache.txt"), errors="replace") as f:
        for line in f:
            m = re.match(r"^([^#/][^:=]*):(FILEPATH|PATH|STRING|INTERNAL|BOOL|UNINITIALIZED)=(.*)$", line.rstrip("\n"))
            if not m or m.group(1) in OPTIONAL_TOOLS:
                continue
            for item in m.group(3).split(";"):
                token = item.strip().split(" ")[0] if item.strip() else ""
                if token.startswith("/"):
                    note(token, f"CMakeCache.txt: {m.group(1)}")
    makefile = os.path.join(build, "CMakeFiles/Makefile.cmake")
    if os.path.exists(makefile):
        text = open(makefile, errors="replace").read()
        block = re.search(r"set\(CMAKE_MAKEFILE_DEPENDS(.*?)\)", text, re.S)
        for path in re.findall(r'"(/[^"]+)"', block.group(1) if block else ""):
            note(path, "read by cmake at configure (CMakeFiles/Makefile.cmake)")
    for dep in glob.glob(os.path.join(build, "**/*.d"), recursive=True):
        text = open(dep, errors="replace").read().replace("\\\n", " ")
        for path in re.findall(r"(?<![^\s:])(/\S+)", text.split(":", 1)[1] if ":" in text else ""):
            note(path, f"included by {os.path.relpath(dep, build)}")
    binaries = [f for f in glob.glob(os.path.join(build, "bin/*")) + glob.glob(os.path.join(build, "lib/shrink/plugins/*.so"))
                if os.path.isfile(f)]
    for binary in binaries:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
        for lib in re.findall(r"=>\s+(/\S+)", out):
            note(lib, f"linked by {os.path.relpath(binary, build)}")
    return seen


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    build, source = os.path.realpath(args[0]), os.path.realpath(args[1])
    without = set(args[i + 1] for i, a in enumerate(args) if a == "--without" and i + 1 < len(args))
    if not shutil.which("dpkg-query"):
        print("check_build_inputs: not a Debian system (no dpkg-query): skipped")
        return 77
    packages = installed_packages()
    listed = [p for p in read_package_list(source) if p not in without]
    base = [n for n, p in packages.items() if p["essential"] or p["priority"] == "required"] + ["apt"]
    allowed = closure(base + listed, packages)
    owners = path_owners()
    exempt = [source + "/", build + "/", "/usr/local/cuda", os.path.realpath("/usr/local/cuda") + "/"]
    inputs = build_inputs(build)
    problems = {}
    unowned = []
    outside = 0
    for path, where in sorted(inputs.items()):
        if any(path.startswith(e) for e in exempt) or any(os.path.realpath(path).startswith(e) for e in exempt):
            continue
        outside += 1
        found = owners_of(path, owners)
        if not found:
            unowned.append((path, where))
        elif not found & allowed:
            problems.setdefault(" or ".join(sorted(found)), []).append((path, where))
    for package, files in sorted(problems.items()):
        path, where = files[0]
        more = f" (and {len(files) - 1} more of its files)" if len(files) > 1 else ""
        print(f"check_build_inputs: {path} ({where}){more} belongs to the Debian package {package}, which "
              f"scripts/setup does not install: add {package} to scripts/debian-packages")
    for path, where in unowned:
        print(f"check_build_inputs: {path} ({where}) belongs to no Debian package: a fresh machine will not have it")
    print(f"check_build_inputs: {outside} files from outside the repository and /usr/local/cuda; {len(listed)} packages listed, "
          f"{len(allowed)} with the base system and hard dependencies; "
          f"{sum(len(f) for f in problems.values()) + len(unowned)} unaccounted for")
    return 1 if problems or unowned else 0


if __name__ == "__main__":
    sys.exit(main())
