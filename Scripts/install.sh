#!/usr/bin/env bash
# Builds `vhdx` (release) and installs it with its shell completions.
#
#   Scripts/install.sh                 # into ~/.local: ~/.local/bin/vhdx
#   PREFIX=/usr/local Scripts/install.sh
#
# Installs:
#   $PREFIX/bin/vhdx
#   $PREFIX/share/bash-completion/completions/vhdx     (bash-completion loads it on demand)
#   $PREFIX/share/zsh/site-functions/_vhdx             (add the folder to $fpath if it is not)
#   $PREFIX/share/fish/vendor_completions.d/vhdx.fish
#
# Environment:
#   PREFIX         where to install (default ~/.local)
#   VHDX_BINARY    install this binary instead of building one (what the tests do)
#   SWIFT_SCRATCH  swift build --scratch-path (default: the package's .build)
set -euo pipefail

die() { echo "install: error: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${PREFIX:-$HOME/.local}
[[ -n $PREFIX ]] || die "PREFIX is empty"

if [[ -n ${VHDX_BINARY:-} ]]; then
    BIN=$VHDX_BINARY
    [[ -x $BIN ]] || die "VHDX_BINARY=$BIN is not an executable file"
else
    SCRATCH=${SWIFT_SCRATCH:-$ROOT/.build}
    echo "building: swift build -c release --product vhdx (in $ROOT)"
    (cd "$ROOT" && swift build -c release --product vhdx --scratch-path "$SCRATCH") || die "swift build -c release failed"
    BIN=$SCRATCH/release/vhdx
    [[ -x $BIN ]] || die "the build left no binary at $BIN"
fi

version=$("$BIN" --version) || die "$BIN --version failed"

mkdir -p "$PREFIX/bin" "$PREFIX/share/bash-completion/completions" "$PREFIX/share/zsh/site-functions" \
    "$PREFIX/share/fish/vendor_completions.d" || die "cannot create folders under $PREFIX"
# Through a temporary name and a rename, so a running `vhdx` (or a failed copy) never sees a
# half-written binary.
install -m 0755 "$BIN" "$PREFIX/bin/.vhdx.tmp-$$" || die "cannot write $PREFIX/bin"
mv -f "$PREFIX/bin/.vhdx.tmp-$$" "$PREFIX/bin/vhdx"
"$PREFIX/bin/vhdx" --generate-completion-script bash >"$PREFIX/share/bash-completion/completions/vhdx"
"$PREFIX/bin/vhdx" --generate-completion-script zsh >"$PREFIX/share/zsh/site-functions/_vhdx"
"$PREFIX/bin/vhdx" --generate-completion-script fish >"$PREFIX/share/fish/vendor_completions.d/vhdx.fish"

echo "installed vhdx $version: $PREFIX/bin/vhdx"
echo "completions: $PREFIX/share/{bash-completion/completions/vhdx,zsh/site-functions/_vhdx,fish/vendor_completions.d/vhdx.fish}"
case ":$PATH:" in
    *":$PREFIX/bin:"*) ;;
    *) echo "note: $PREFIX/bin is not on PATH; add it, e.g. export PATH=\"$PREFIX/bin:\$PATH\"" ;;
esac
