#!/usr/bin/env bash
# Installs the Debian packages the tests drive (a DICOM sender nobody here wrote, a site PACS (Orthanc), a real browser,
# openssl) when missing.
set -euo pipefail
need=()
command -v storescu >/dev/null 2>&1 || need+=(dcmtk)
command -v echoscu >/dev/null 2>&1 || need+=(dcmtk)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v msgfmt >/dev/null 2>&1 || need+=(gettext)  # makemessages and compilemessages (French catalogue test)
command -v openssl >/dev/null 2>&1 || need+=(openssl)  # the production journey's self-signed certificate
# Orthanc plays a site's PACS in the priors' integration test (query/retrieve) and is a peer in the benchmarks.
command -v Orthanc >/dev/null 2>&1 || [ -x /usr/sbin/Orthanc ] || need+=(orthanc)
# benchmarks/viewer.py: OHIF on Orthanc's DICOMweb beside ours (the plugin's .so under /usr/share/orthanc/plugins)
if [ "${1:-}" = "--bench" ]; then
  [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $(printf "%s\n" "${need[@]}" | sort -u) >/dev/null
fi
