#!/bin/sh
# fetch-geodata.sh DIR — provide the open IP attribution data Portcullis uses
# (country: CC0 MaxMind-format database; ASN: DB-IP/RouteViews tables, CC BY 4.0,
# credit required, see internal/geo.Credits) in DIR:
#
#   DIR/geo-whois-asn-country.mmdb   from npm @ip-location-db/geo-whois-asn-country-mmdb
#   DIR/asn-ipv4.csv.gz              from npm @ip-location-db/asn (gzip -9n of asn-ipv4.csv)
#   DIR/asn-ipv6.csv.gz              from npm @ip-location-db/asn (gzip -9n of asn-ipv6.csv)
#   DIR/LICENSE-DBIP.txt, LICENSE-NRO.txt, LICENSE-ROUTEVIEWS.txt
#
# Versions and checksums are pinned (they match shared/data/SOURCES.md); every
# file is verified with sha256 (the CSVs on their uncompressed content, since
# gzip output may differ between gzip versions). Idempotent: files already
# present with the right checksum are kept and nothing is downloaded when all
# are. Needs npm (or curl as a fallback), tar, gzip and sha256sum.
set -eu

VERSION=2.3.2026061719
MMDB_PKG=@ip-location-db/geo-whois-asn-country-mmdb
ASN_PKG=@ip-location-db/asn
# npm "shasum" (sha1 of the tarball) as published in the registry.
MMDB_TGZ_SHA1=d83ce8ab70533e271d7e96bc50d8d816cf4f4470
ASN_TGZ_SHA1=ab2cb6488fbf93ee2e36df0392abde3ddc0dd7e8

SHA_MMDB=c5f7c0e9bd6a6ccb5a2e9634764544a0d08bd0bd8788b8aedfac87bea184c652
SHA_ASN4=76afd7f575bc22d3b3d52f4666fb1ec20c254948829c8f23b1ecc8b8856106d5 # uncompressed
SHA_ASN6=c91289d4d5dba149fb5f0c12ff3a6db3ad2d1910250034f56f187f4d32f1d337 # uncompressed
SHA_LIC_DBIP=cf98d18619ba57e09de56e1c1c6a431fbadd4b14d560d5f15534332b3120e858
SHA_LIC_NRO=cc9dc9df675c3479fa6b8ed257aefdb222694614dd02ae6c37f0475b79ad485b
SHA_LIC_RV=48bdbc0dabad562d28c3be81432810db02c8acd1abe7ece3ac9ac9ec8e74fb58

die() { echo "fetch-geodata: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 DIR"
DIR=$1
mkdir -p "$DIR"

sha() { sha256sum | cut -d' ' -f1; }
sha_file() { sha < "$1"; }
sha_gz() { gzip -dc < "$1" | sha; }

# ok FILE SHA [gz]: the file exists and has the pinned checksum.
ok() {
	[ -f "$1" ] || return 1
	if [ "${3:-}" = gz ]; then
		[ "$(sha_gz "$1" 2>/dev/null || true)" = "$2" ]
	else
		[ "$(sha_file "$1")" = "$2" ]
	fi
}

need_mmdb=0
need_asn=0
ok "$DIR/geo-whois-asn-country.mmdb" $SHA_MMDB || need_mmdb=1
ok "$DIR/LICENSE-NRO.txt" $SHA_LIC_NRO || need_mmdb=1
ok "$DIR/asn-ipv4.csv.gz" $SHA_ASN4 gz || need_asn=1
ok "$DIR/asn-ipv6.csv.gz" $SHA_ASN6 gz || need_asn=1
ok "$DIR/LICENSE-DBIP.txt" $SHA_LIC_DBIP || need_asn=1
ok "$DIR/LICENSE-ROUTEVIEWS.txt" $SHA_LIC_RV || need_asn=1

if [ $need_mmdb -eq 0 ] && [ $need_asn -eq 0 ]; then
	echo "fetch-geodata: $DIR is up to date ($VERSION)"
	exit 0
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

# fetch PKG SHA1: download the package tarball into $TMP and unpack it into
# $TMP/<name>/package. Prints the unpacked package directory.
fetch() {
	pkg=$1
	want=$2
	name=${pkg#@ip-location-db/}
	if command -v npm >/dev/null 2>&1; then
		(cd "$TMP" && npm pack --silent "$pkg@$VERSION" >/dev/null) || die "npm pack $pkg@$VERSION failed"
	elif command -v curl >/dev/null 2>&1; then
		curl -fsSL -o "$TMP/ip-location-db-$name-$VERSION.tgz" \
			"https://registry.npmjs.org/$pkg/-/$name-$VERSION.tgz" || die "download of $pkg@$VERSION failed"
	else
		die "need npm or curl to download $pkg"
	fi
	tgz="$TMP/ip-location-db-$name-$VERSION.tgz"
	[ -f "$tgz" ] || die "expected tarball $tgz not found"
	got=$(sha1sum < "$tgz" | cut -d' ' -f1)
	[ "$got" = "$want" ] || die "$pkg@$VERSION tarball sha1 $got, want $want"
	mkdir -p "$TMP/$name"
	tar -xzf "$tgz" -C "$TMP/$name"
	echo "$TMP/$name/package"
}

# install SRC DEST SHA: verify SRC and move it into place atomically.
install_file() {
	got=$(sha_file "$1")
	[ "$got" = "$3" ] || die "$(basename "$1") sha256 $got, want $3"
	cp "$1" "$2.tmp.$$"
	mv "$2.tmp.$$" "$2"
	echo "fetch-geodata: $2 ok"
}

# install_gz SRC DEST SHA: verify SRC (uncompressed), gzip it into place.
install_gz() {
	got=$(sha_file "$1")
	[ "$got" = "$3" ] || die "$(basename "$1") sha256 $got, want $3"
	gzip -9n < "$1" > "$2.tmp.$$"
	mv "$2.tmp.$$" "$2"
	echo "fetch-geodata: $2 ok"
}

if [ $need_mmdb -eq 1 ]; then
	p=$(fetch $MMDB_PKG $MMDB_TGZ_SHA1)
	install_file "$p/geo-whois-asn-country.mmdb" "$DIR/geo-whois-asn-country.mmdb" $SHA_MMDB
	install_file "$p/NRO_LICENSE" "$DIR/LICENSE-NRO.txt" $SHA_LIC_NRO
fi
if [ $need_asn -eq 1 ]; then
	p=$(fetch $ASN_PKG $ASN_TGZ_SHA1)
	install_gz "$p/asn-ipv4.csv" "$DIR/asn-ipv4.csv.gz" $SHA_ASN4
	install_gz "$p/asn-ipv6.csv" "$DIR/asn-ipv6.csv.gz" $SHA_ASN6
	install_file "$p/DBIP-LICENSE" "$DIR/LICENSE-DBIP.txt" $SHA_LIC_DBIP
	install_file "$p/ROUTEVIEWS-LICENSE" "$DIR/LICENSE-ROUTEVIEWS.txt" $SHA_LIC_RV
fi
echo "fetch-geodata: done. The ASN data is CC BY 4.0: credit DB-IP (https://db-ip.com), RouteViews and NRO."
