#!/usr/bin/env bash
# Installs every Debian package mukaika needs to build, test and run.
# Idempotent and non-interactive; Debian 12 (bookworm); run as root.
# Nothing is downloaded from anywhere but Debian's package archive.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get needs it)" >&2
  exit 2
fi

packages=(
  # build
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # libraries
  libgmime-3.0-dev libmagic-dev libmagic-mgc libclamav-dev libxml2-dev
  libtomlplusplus-dev nlohmann-json3-dev libssl-dev
  libpoppler-cpp-dev libpoppler-glib-dev libcairo2-dev libarchive-dev
  libseccomp-dev libboost-dev libboost-system-dev
  # pdf.rasterize, image.reencode; Japanese fonts for PDFs that do not embed theirs,
  # and poppler-data: the CMaps Poppler needs to read Adobe-Japan1 CID fonts at all
  libdeflate-dev libturbojpeg0-dev libpng-dev libgif-dev libtiff-dev libwebp-dev librsvg2-dev
  libfontconfig-dev libfreetype-dev fonts-ipafont-gothic fonts-ipafont-mincho poppler-data
  # tests
  libgtest-dev libgmock-dev python3 clamav-testfiles swaks
  # PDF tests and benchmark: encrypted PDFs, pdftoppm, peak memory
  qpdf poppler-utils time
  # PPAP tests: password-protected zips (ZipCrypto with zip -P, AES and 7z with 7z)
  zip p7zip-full
  # archive.flatten tests: hand-built zips (raw deflate, CRC-32)
  zlib1g-dev
  # the MTA hop: STARTTLS; real SMTP peers in tests (Postfix's smtp-sink and
  # smtp-source, a throwaway Postfix instance, Python's aiosmtpd)
  libboost-thread-dev postfix python3-aiosmtpd
  # browser tests of the drop box in Debian's headless Chromium (driven by
  # playwright-core from npm); curl for the demo's and the benchmark's uploads
  chromium curl
)
# Node.js and npm for playwright-core: Debian's, unless a Node.js with npm is
# already there (a nodesource nodejs bundles npm and conflicts with Debian's).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Postfix is installed for its tools and for throwaway instances in tests;
# the system's own instance is left unconfigured (it does not listen).
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
