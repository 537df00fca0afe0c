# shellcheck shell=bash
# Shared functions for the local stack: Debian packages, a private PostgreSQL 15 cluster and a
# single-node KRaft Kafka broker, all under the repository's .local/ (git-ignored).
# Sourced by deploy/local/{install,infra-up,infra-down,up,down} and tests/run; every function
# is idempotent so that scripts can be run again after a partial failure.

CASB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CASB_LOCAL="$CASB_ROOT/.local"

# Ports can be moved (e.g. to run a second, isolated stack from another checkout); the
# defaults are the documented ones.
CASB_PG_PORT="${CASB_PG_PORT:-55432}"
CASB_PG_BIN=/usr/lib/postgresql/15/bin
CASB_PG_USER=casb-pg # system user owning the cluster: initdb and postgres refuse to run as root
CASB_PG_DIR="$CASB_LOCAL/pg"
CASB_DATABASE_URL="postgresql://casb:casb@127.0.0.1:$CASB_PG_PORT/casb"

CASB_KAFKA_VERSION=3.9.1
CASB_SCALA_VERSION=2.13
CASB_KAFKA_DIR="$CASB_LOCAL/kafka"
CASB_KAFKA_BROKERS="127.0.0.1:${CASB_KAFKA_PORT:-19092}"
CASB_KAFKA_CONTROLLER="127.0.0.1:${CASB_KAFKA_CONTROLLER_PORT:-19093}"
# topic:partitions; each also gets a single-partition .dlq
CASB_KAFKA_TOPICS="casb.scan.jobs:6 casb.scan.results:6 casb.integration.events:3"

CASB_DEBIAN_PACKAGES="build-essential cmake pkg-config libcurl4-openssl-dev libjansson-dev
librdkafka-dev libpq-dev libcivetweb-dev libcmocka-dev libssl-dev postgresql-15
openjdk-17-jre-headless maven kcat python3 python3-pytest python3-yaml curl openssl"

casb_log() { printf '[casb %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
casb_die() { casb_log "ERROR: $*"; exit 1; }

# The Debian packages among "$@" that are not installed, one a line.
casb_apt_missing() {
  local p status
  for p in "$@"; do
    status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] || echo "$p"
  done
}

# Installs the given Debian packages (none: nothing to do), as root only.
casb_apt_install() {
  [ $# -eq 0 ] && return 0
  casb_log "installing Debian packages: $*"
  [ "$(id -u)" -eq 0 ] || casb_die "missing packages ($*) and not root"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || casb_die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "$@" || casb_die "apt-get install $* failed"
}

# A Python venv at $1, made once.
casb_venv_ensure() {
  [ -x "$1/bin/python" ] && return 0
  casb_log "creating $1"
  python3 -m venv "$1" || casb_die "python3 -m venv failed"
}

# Installs only what is missing, so that a prepared machine does not touch the network.
casb_install_packages() {
  local missing
  # shellcheck disable=SC2046,SC2086 # package names have no spaces
  missing=($(casb_apt_missing $CASB_DEBIAN_PACKAGES))
  [ ${#missing[@]} -eq 0 ] && return 0
  # The postgresql-15 package would otherwise create and start a system cluster on 5432: we
  # run our own under .local/.
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && [ "$(id -u)" -eq 0 ] &&
    [ ! -e /etc/postgresql-common/createcluster.d/casb.conf ]; then
    mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/casb.conf
  fi
  casb_apt_install "${missing[@]}"
}

# The browser test (tests/browser): Debian's Chromium and playwright-core from the lock file.
# Playwright's own browser download is never used (and cannot work offline).
CASB_BROWSER_DIR="$CASB_ROOT/tests/browser"
casb_install_browser_deps() {
  if [ ! -x /usr/bin/chromium ]; then
    casb_log "installing Debian packages: chromium chromium-driver"
    [ "$(id -u)" -eq 0 ] || casb_die "chromium missing and not root"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || casb_die "apt-get update failed"
    apt-get install -y -q chromium chromium-driver || casb_die "apt-get install chromium failed"
  fi
  command -v npm >/dev/null 2>&1 || casb_die "npm (Node.js) is needed for tests/browser"
  # npm ci again only when the lock file changed since the last install.
  local stamp="$CASB_BROWSER_DIR/node_modules/.casb-package-lock.json"
  if [ ! -d "$CASB_BROWSER_DIR/node_modules/playwright-core" ] ||
    ! cmp -s "$CASB_BROWSER_DIR/package-lock.json" "$stamp"; then
    casb_log "npm ci in tests/browser"
    (cd "$CASB_BROWSER_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund) ||
      casb_die "npm ci in tests/browser failed"
    cp "$CASB_BROWSER_DIR/package-lock.json" "$stamp"
  fi
}

# Closes every descriptor above 2 of the current shell. Long-lived processes (broker,
# services, simulator) call it before exec: one started under `flock /tmp/casb-stack.lock
# deploy/local/up` would otherwise inherit the lock's descriptor and hold the lock for as
# long as it runs, so that every later `flock` on it waits forever.
casb_close_fds() {
  local self="$BASHPID" fd
  for fd in $(ls "/proc/$self/fd"); do
    [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

# True when the pid in FILE is alive and its command line contains PATTERN.
casb_pid_alive() {
  local file="$1" pattern="$2" pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file" 2>/dev/null)"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern"
}

# Sends SIGTERM to the process in FILE, waits up to TIMEOUT seconds, then SIGKILL.
casb_pid_stop() {
  local file="$1" pattern="$2" timeout="${3:-30}" pid i
  if ! casb_pid_alive "$file" "$pattern"; then
    rm -f "$file"
    return 0
  fi
  pid="$(cat "$file")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    casb_pid_alive "$file" "$pattern" || break
    sleep 0.1
  done
  if casb_pid_alive "$file" "$pattern"; then
    casb_log "pid $pid did not stop in ${timeout}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$file"
}

# Waits until CMD succeeds, up to TIMEOUT seconds.
casb_wait_for() {
  local timeout="$1" what="$2" i
  shift 2
  for ((i = 0; i < timeout * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  casb_log "timed out after ${timeout}s waiting for $what"
  return 1
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

casb_pg_ensure_user() {
  id -u "$CASB_PG_USER" >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || casb_die "user $CASB_PG_USER missing and not root"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    "$CASB_PG_USER" || casb_die "useradd $CASB_PG_USER failed"
}

# Runs a PostgreSQL server binary as the cluster owner (or as ourselves when not root).
casb_pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$CASB_PG_USER" -- "$@"
  else
    "$@"
  fi
}

casb_pg_superuser_password() { cat "$CASB_PG_DIR/superuser-password"; }

# psql as the cluster superuser over TCP (the cluster has no Unix socket: paths of CI clones
# may exceed the socket path limit).
casb_psql_super() {
  PGPASSWORD="$(casb_pg_superuser_password)" PGOPTIONS="-c client_min_messages=warning" \
    psql -X -q -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$CASB_PG_PORT" -U postgres "$@"
}

casb_pg_init() {
  local data="$CASB_PG_DIR/data"
  [ -f "$data/PG_VERSION" ] && return 0
  [ "$(id -u)" -eq 0 ] && casb_pg_ensure_user
  mkdir -p "$CASB_PG_DIR"
  chmod 755 "$CASB_LOCAL" "$CASB_PG_DIR"
  if [ "$(id -u)" -eq 0 ] && ! runuser -u "$CASB_PG_USER" -- test -x "$CASB_PG_DIR"; then
    # The cluster owner must be able to reach its directory: a checkout under a private
    # directory (mode 700) needs search permission on the way down, nothing more.
    local d="$CASB_PG_DIR"
    while [ "$d" != / ]; do
      d="$(dirname "$d")"
      runuser -u "$CASB_PG_USER" -- test -x "$d" || chmod o+x "$d"
    done
  fi
  rm -rf "$data"
  mkdir -p "$data"
  if [ ! -s "$CASB_PG_DIR/superuser-password" ]; then
    (umask 077 && openssl rand -hex 16 >"$CASB_PG_DIR/superuser-password")
  fi
  local pwfile="$CASB_PG_DIR/.pwfile"
  (umask 077 && cp "$CASB_PG_DIR/superuser-password" "$pwfile")
  if [ "$(id -u)" -eq 0 ]; then
    chown "$CASB_PG_USER:" "$data" "$pwfile"
  fi
  chmod 700 "$data"
  casb_log "initdb $data"
  casb_pg_as_owner "$CASB_PG_BIN/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$CASB_PG_DIR/initdb.log" 2>&1 || {
    rm -f "$pwfile"
    cat "$CASB_PG_DIR/initdb.log" >&2
    casb_die "initdb failed"
  }
  rm -f "$pwfile"
  cat >>"$data/postgresql.conf" <<EOF

# casb local stack
listen_addresses = '127.0.0.1'
port = $CASB_PG_PORT
unix_socket_directories = ''
max_connections = 200
shared_buffers = 128MB
fsync = on
log_min_messages = warning
log_line_prefix = '%m [%p] %u@%d '
EOF
  cat >"$data/pg_hba.conf" <<EOF
# casb local stack: TCP on loopback only, passwords required
host all all 127.0.0.1/32 scram-sha-256
EOF
}

casb_pg_running() {
  casb_pg_as_owner "$CASB_PG_BIN/pg_ctl" -D "$CASB_PG_DIR/data" status >/dev/null 2>&1
}

casb_pg_start() {
  casb_pg_init
  if ! casb_pg_running; then
    casb_log "starting PostgreSQL on 127.0.0.1:$CASB_PG_PORT"
    local logf="$CASB_PG_DIR/postgres.log"
    touch "$logf"
    [ "$(id -u)" -eq 0 ] && chown "$CASB_PG_USER:" "$logf"
    casb_pg_as_owner "$CASB_PG_BIN/pg_ctl" -D "$CASB_PG_DIR/data" -l "$logf" -w -t 60 start \
      >/dev/null || {
      tail -n 30 "$logf" >&2
      casb_die "PostgreSQL did not start"
    }
  fi
  casb_wait_for 30 "PostgreSQL" pg_isready -q -h 127.0.0.1 -p "$CASB_PG_PORT" || return 1
  casb_pg_bootstrap
}

# Role casb/casb and databases casb (+ extra names given as arguments, owned by casb).
casb_pg_bootstrap() {
  local db
  casb_psql_super -d postgres <<'EOF' || casb_die "creating role casb failed"
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'casb') THEN
    CREATE ROLE casb LOGIN PASSWORD 'casb';
  END IF;
END $$;
EOF
  for db in casb "$@"; do
    if [ -z "$(casb_psql_super -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname='$db'")" ]; then
      casb_psql_super -d postgres -c "CREATE DATABASE \"$db\" OWNER casb" ||
        casb_die "CREATE DATABASE $db failed"
    fi
  done
}

casb_pg_stop() {
  [ -f "$CASB_PG_DIR/data/PG_VERSION" ] || return 0
  if casb_pg_running; then
    casb_log "stopping PostgreSQL"
    casb_pg_as_owner "$CASB_PG_BIN/pg_ctl" -D "$CASB_PG_DIR/data" -m fast -w -t 60 stop >/dev/null
  fi
}

# ---------------------------------------------------------------------------------------------
# Kafka

# The broker's runtime closure from Maven Central, via a throw-away pom (no tarball download).
casb_kafka_fetch() {
  local lib="$CASB_KAFKA_DIR/lib" stamp="$CASB_KAFKA_DIR/lib/.complete-$CASB_KAFKA_VERSION"
  [ -f "$stamp" ] && return 0
  casb_log "fetching Apache Kafka $CASB_KAFKA_VERSION jars from Maven Central"
  local work="$CASB_KAFKA_DIR/fetch"
  rm -rf "$lib" "$work"
  mkdir -p "$work"
  cat >"$work/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>casb.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$CASB_SCALA_VERSION</artifactId><version>$CASB_KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$CASB_KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>1.2.25</version></dependency>
  </dependencies>
</project>
EOF
  (cd "$work" && mvn -q --batch-mode -DincludeScope=runtime -DoutputDirectory="$lib" \
    org.apache.maven.plugins:maven-dependency-plugin:3.7.1:copy-dependencies) >"$work/mvn.log" 2>&1 || {
    tail -n 40 "$work/mvn.log" >&2
    casb_die "fetching Kafka jars failed"
  }
  ls "$lib"/kafka_"$CASB_SCALA_VERSION"-"$CASB_KAFKA_VERSION".jar >/dev/null || casb_die "kafka jar missing"
  touch "$stamp"
}

casb_kafka_config() {
  local conf="$CASB_KAFKA_DIR/config"
  mkdir -p "$conf" "$CASB_KAFKA_DIR/data" "$CASB_KAFKA_DIR/logs"
  cat >"$conf/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$CASB_KAFKA_CONTROLLER
listeners=PLAINTEXT://$CASB_KAFKA_BROKERS,CONTROLLER://$CASB_KAFKA_CONTROLLER
advertised.listeners=PLAINTEXT://$CASB_KAFKA_BROKERS
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$CASB_KAFKA_DIR/data/logs
metadata.log.dir=$CASB_KAFKA_DIR/data/metadata
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=67108864
EOF
  cat >"$conf/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$CASB_KAFKA_DIR/logs/server.log
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.controller=INFO
EOF
  # Tools log warnings only, to their own file, so that their stdout stays readable.
  sed -e "s#server.log#tools.log#" -e "s#^log4j.rootLogger=INFO#log4j.rootLogger=WARN#" \
    "$conf/log4j.properties" >"$conf/tools-log4j.properties"
}

casb_kafka_java() {
  local logcfg="$1"
  shift
  java -Xmx256m -XX:+UseSerialGC -Dlog4j.configuration="file:$CASB_KAFKA_DIR/config/$logcfg" \
    -cp "$CASB_KAFKA_DIR/lib/*" "$@"
}

casb_kafka_format() {
  [ -f "$CASB_KAFKA_DIR/data/metadata/meta.properties" ] && return 0
  local id
  if [ ! -s "$CASB_KAFKA_DIR/cluster-id" ]; then
    casb_kafka_java tools-log4j.properties kafka.tools.StorageTool random-uuid \
      >"$CASB_KAFKA_DIR/cluster-id" || casb_die "StorageTool random-uuid failed"
  fi
  id="$(tr -d '[:space:]' <"$CASB_KAFKA_DIR/cluster-id")"
  casb_log "formatting KRaft storage (cluster $id)"
  casb_kafka_java tools-log4j.properties kafka.tools.StorageTool format --ignore-formatted \
    -t "$id" -c "$CASB_KAFKA_DIR/config/server.properties" >"$CASB_KAFKA_DIR/logs/format.log" 2>&1 || {
    cat "$CASB_KAFKA_DIR/logs/format.log" >&2
    casb_die "StorageTool format failed"
  }
}

casb_kafka_running() { casb_pid_alive "$CASB_KAFKA_DIR/kafka.pid" kafka.Kafka; }

casb_kafka_answers() { timeout 10 kcat -b "$CASB_KAFKA_BROKERS" -L -m 5 -q >/dev/null 2>&1; }

casb_kafka_start() {
  casb_kafka_fetch
  casb_kafka_config
  casb_kafka_format
  if ! casb_kafka_running; then
    casb_log "starting Kafka $CASB_KAFKA_VERSION on $CASB_KAFKA_BROKERS"
    # setsid: the broker must not receive the terminal's signals nor keep the caller's job alive.
    (casb_close_fds && exec setsid java -Xmx512m -Xms512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$CASB_KAFKA_DIR/config/log4j.properties" \
      -Dkafka.logs.dir="$CASB_KAFKA_DIR/logs" \
      -cp "$CASB_KAFKA_DIR/lib/*" kafka.Kafka "$CASB_KAFKA_DIR/config/server.properties" \
      </dev/null >"$CASB_KAFKA_DIR/logs/stdout.log" 2>&1) &
    echo $! >"$CASB_KAFKA_DIR/kafka.pid"
  fi
  casb_wait_for 120 "Kafka at $CASB_KAFKA_BROKERS" casb_kafka_answers || {
    tail -n 30 "$CASB_KAFKA_DIR/logs/stdout.log" "$CASB_KAFKA_DIR/logs/server.log" >&2
    casb_die "Kafka did not start"
  }
  casb_kafka_topics
}

casb_kafka_existing_topics() {
  timeout 20 kcat -b "$CASB_KAFKA_BROKERS" -L -J 2>/dev/null |
    python3 -c 'import json,sys; [print(t["topic"]) for t in json.load(sys.stdin)["topics"]]'
}

casb_kafka_topics() {
  local existing spec topic parts t
  existing="$(casb_kafka_existing_topics)" || casb_die "listing topics failed"
  for spec in $CASB_KAFKA_TOPICS; do
    topic="${spec%%:*}"
    parts="${spec##*:}"
    for t in "$topic:$parts" "$topic.dlq:1"; do
      if ! grep -qx -- "${t%%:*}" <<<"$existing"; then
        casb_log "creating topic ${t%%:*} (${t##*:} partitions)"
        casb_kafka_java tools-log4j.properties org.apache.kafka.tools.TopicCommand \
          --bootstrap-server "$CASB_KAFKA_BROKERS" --create --if-not-exists \
          --topic "${t%%:*}" --partitions "${t##*:}" --replication-factor 1 >/dev/null ||
          casb_die "creating topic ${t%%:*} failed"
      fi
    done
  done
}

casb_kafka_stop() {
  if casb_kafka_running; then
    casb_log "stopping Kafka"
    casb_pid_stop "$CASB_KAFKA_DIR/kafka.pid" kafka.Kafka 60
  fi
}

# PostgreSQL and Kafka, ready for the services.
casb_infra_up() {
  mkdir -p "$CASB_LOCAL"
  casb_pg_start
  casb_kafka_start
}

casb_infra_down() {
  casb_kafka_stop
  casb_pg_stop
}

# ---------------------------------------------------------------------------------------------
# Services and the simulator

CASB_BUILD_DIR="${CASB_BUILD_DIR:-$CASB_ROOT/build}"
CASB_RUN_DIR="$CASB_LOCAL/run"
CASB_LOG_DIR="$CASB_LOCAL/logs"
CASB_SIM_ADDR=127.0.0.1:8090
CASB_SIM_URL="http://$CASB_SIM_ADDR"
# The demo tenant's GitHub OAuth client (auth.oauth of tenants/demo.json): simulator values,
# not secrets of any real service.
CASB_SIM_OAUTH_CLIENT_ID="Iv1.acmedemo00000001"
CASB_SIM_OAUTH_CLIENT_SECRET="sim-oauth-secret-acme-demo-0000000000001"
CASB_SIM_APP_SLUG="casb-scanner"
CASB_SIM_TENANT="$CASB_ROOT/tests/fakes/saas-sim/tenants/demo.json"
# The Google Workspace demo customer and its service-account key file (a simulator fixture).
CASB_SIM_GOOGLE_TENANT="$CASB_ROOT/tests/fakes/saas-sim/tenants/google-demo.json"
CASB_SIM_GOOGLE_KEY="$CASB_ROOT/tests/fakes/saas-sim/tenants/google-demo-sa-key.json"
# The simulator's DNS responder (UDP): the TXT records of the Google tenants' domains.
CASB_SIM_DNS_ADDR=127.0.0.1:8053
CASB_SERVICES="integration-manager scheduler scanner-worker findings-api"

# Replicas: replica 1 of a service is the service's own name; replica k>1 is <svc>-<k>, with
# its own pid file and log, on the service's port + 100*(k-1) (scanner-worker-2: 8184).
CASB_REPLICA_MAX=9

# The service a process name belongs to: scanner-worker-2 -> scanner-worker.
casb_svc_base() {
  local base="${1%-[2-9]}"
  case " $CASB_SERVICES " in *" $base "*) echo "$base" && return 0 ;; esac
  echo "$1"
}

# The replica number of a process name: scanner-worker-2 -> 2, scanner-worker -> 1.
casb_svc_replica() {
  if [ "$(casb_svc_base "$1")" = "$1" ]; then echo 1; else echo "${1##*-}"; fi
}

# The name of replica K of SVC (K=1: SVC itself).
casb_svc_replica_name() {
  if [ "$2" -le 1 ]; then echo "$1"; else echo "$1-$2"; fi
}

casb_svc_addr() {
  local port k
  case "$(casb_svc_base "$1")" in
    integration-manager) port=8081 ;;
    findings-api) port=8082 ;;
    scheduler) port=8083 ;;
    scanner-worker) port=8084 ;;
    saas-sim) echo "$CASB_SIM_ADDR" && return 0 ;;
    *) return 1 ;;
  esac
  k="$(casb_svc_replica "$1")"
  echo "127.0.0.1:$((port + 100 * (k - 1)))"
}

casb_build() {
  local dir="${1:-$CASB_BUILD_DIR}"
  shift || true
  casb_log "building in $dir"
  cmake -S "$CASB_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCASB_WERROR=ON "$@" \
    >"$dir.configure.log" 2>&1 || {
    cat "$dir.configure.log" >&2
    casb_die "cmake configure failed"
  }
  rm -f "$dir.configure.log"
  cmake --build "$dir" -j2 || casb_die "build failed"
}

casb_ensure_secrets() {
  local f="$CASB_LOCAL/secrets.env" sim="$CASB_LOCAL/sim"
  mkdir -p "$sim"
  if [ ! -s "$sim/github-app-key.pem" ]; then
    casb_log "generating the demo GitHub App key"
    # PKCS#1 "BEGIN RSA PRIVATE KEY", the format GitHub hands out for App keys.
    (umask 077 && openssl genrsa -traditional -out "$sim/github-app-key.pem" 2048 2>/dev/null) ||
      casb_die "openssl genrsa failed"
    rm -f "$sim/github-app-key.pub.pem"
  fi
  if [ ! -s "$sim/github-app-key.pub.pem" ]; then
    openssl rsa -in "$sim/github-app-key.pem" -pubout -out "$sim/github-app-key.pub.pem" 2>/dev/null ||
      casb_die "openssl rsa -pubout failed"
  fi
  if [ ! -s "$f" ]; then
    casb_log "generating CASB_MASTER_KEY and CASB_ADMIN_TOKEN into $f"
    (umask 077 && {
      echo "CASB_MASTER_KEY=$(openssl rand -hex 32)"
      echo "CASB_ADMIN_TOKEN=casb_$(openssl rand -hex 24)"
    } >"$f")
  fi
  chmod 600 "$f"
  # shellcheck disable=SC1090
  . "$f"
}

casb_port_in_use() {
  local port="${1##*:}"
  ss -Htln "sport = :$port" 2>/dev/null | grep -q .
}

casb_http_ok() { curl -fs -m 3 -o /dev/null "$1"; }

# The pid file of a service (or the simulator, name saas-sim).
casb_svc_pidfile() { echo "$CASB_RUN_DIR/$1.pid"; }
casb_svc_binary() { echo "$CASB_BUILD_DIR/casb-$(casb_svc_base "$1")"; }
# The command-line pattern of a process: its binary's name (shared by the replicas).
casb_svc_pattern() { echo "casb-$(casb_svc_base "$1")"; }
casb_svc_running() { casb_pid_alive "$(casb_svc_pidfile "$1")" "$(casb_svc_pattern "$1")"; }

# Starts one process (service or simulator) unless it already runs the current binary:
#   casb_proc_start NAME ADDR [VAR=value ...] [-- ARG ...]
# A process started from an older build is replaced, so that `up` after a rebuild runs
# what was just built.
casb_proc_start() {
  local name="$1" addr="$2"
  shift 2
  local envs=() pidf bin
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    envs+=("$1")
    shift
  done
  [ $# -gt 0 ] && shift
  pidf="$(casb_svc_pidfile "$name")"
  bin="$(casb_svc_binary "$name")"
  [ -x "$bin" ] || casb_die "$bin not built"
  mkdir -p "$CASB_RUN_DIR" "$CASB_LOG_DIR"
  if casb_svc_running "$name"; then
    if [ "$bin" -nt "$pidf" ]; then
      casb_log "restarting $name (binary rebuilt)"
      casb_pid_stop "$pidf" "$(casb_svc_pattern "$name")" 40
    else
      return 0
    fi
  fi
  if casb_port_in_use "$addr"; then
    casb_die "$addr is taken by another process (not started by deploy/local): stop it first"
  fi
  casb_log "starting $name on $addr"
  (cd "$CASB_ROOT" && casb_close_fds && exec setsid env "${envs[@]}" "$bin" "$@" </dev/null >>"$CASB_LOG_DIR/$name.log" 2>&1) &
  local pid=$! i
  echo "$pid" >"$pidf"
  # Until the forked shell has exec'ed, the pid file names a process whose command line is
  # not the service's, and casb_svc_running would take that instant for an exit (a loaded
  # machine made `up` die with "integration-manager exited" while it was starting).
  for ((i = 0; i < 200; i++)); do
    casb_pid_alive "$pidf" "$(basename "$bin")" && break
    [ -d "/proc/$pid" ] || break
    sleep 0.05
  done
}

# casb_proc_start_service NAME: a service or one of its replicas (<svc>-<k>); a replica gets
# the environment of replica 1 but for CASB_HTTP_ADDR.
casb_proc_start_service() {
  local name="$1" svc addr
  svc="$(casb_svc_base "$name")"
  addr="$(casb_svc_addr "$svc")"
  local envs=(CASB_DATABASE_URL="$CASB_DATABASE_URL" CASB_KAFKA_BROKERS="$CASB_KAFKA_BROKERS"
    CASB_HTTP_ADDR="$(casb_svc_addr "$name")" CASB_LOG_LEVEL="${CASB_LOG_LEVEL:-info}"
    CASB_ALLOWED_ENDPOINTS="${CASB_ALLOWED_ENDPOINTS:-$CASB_SIM_URL}"
    CASB_SHUTDOWN_GRACE_S="${CASB_SHUTDOWN_GRACE_S:-10}"
    # The test suites and the API fuzzer send thousands of requests a minute with one token.
    CASB_API_RATE_PER_SECOND="${CASB_API_RATE_PER_SECOND:-2000}"
    CASB_API_RATE_BURST="${CASB_API_RATE_BURST:-20000}")
  # The services that seal or open secrets under the master key: integrations' credentials
  # (integration-manager, scanner-worker) and webhooks' secrets (findings-api). A rotation
  # left half-done keeps its previous key in secrets.env: they must keep it across any
  # restart until every row is re-sealed.
  local previous
  previous="$(casb_secrets_get CASB_MASTER_KEY_PREVIOUS)"
  case "$svc" in
    integration-manager | scanner-worker | findings-api)
      envs+=(CASB_MASTER_KEY="$CASB_MASTER_KEY")
      [ -n "$previous" ] && envs+=(CASB_MASTER_KEY_PREVIOUS="$previous")
      ;;
  esac
  case "$svc" in
    integration-manager | scanner-worker)
      # GitHub's consent flow against the simulator: the OAuth client registered in the demo
      # tenant (tests/fakes/saas-sim/tenants/demo.json), unless the operator sets another.
      envs+=(CASB_GITHUB_OAUTH_CLIENT_ID="${CASB_GITHUB_OAUTH_CLIENT_ID:-$CASB_SIM_OAUTH_CLIENT_ID}"
        CASB_GITHUB_OAUTH_CLIENT_SECRET="${CASB_GITHUB_OAUTH_CLIENT_SECRET:-$CASB_SIM_OAUTH_CLIENT_SECRET}"
        CASB_GITHUB_WEB_URL="${CASB_GITHUB_WEB_URL:-$CASB_SIM_URL}")
      ;;
  esac
  # The DNS checks (SPF, DMARC) of the demo's Google domains ask the simulator's responder.
  [ "$svc" = scanner-worker ] && envs+=(CASB_DNS_RESOLVER="${CASB_DNS_RESOLVER:-$CASB_SIM_DNS_ADDR}")
  case "$svc" in
    integration-manager)
      envs+=(CASB_ADMIN_TOKEN="$CASB_ADMIN_TOKEN" CASB_PUBLIC_URL="${CASB_PUBLIC_URL:-http://$addr}"
        CASB_GITHUB_APP_SLUG="${CASB_GITHUB_APP_SLUG:-$CASB_SIM_APP_SLUG}"
        CASB_CORS_ORIGINS="${CASB_CORS_ORIGINS:-http://$(casb_svc_addr findings-api)}")
      ;;
    # The dashboard (served by findings-api) calls integration-manager from the browser.
    findings-api)
      envs+=(CASB_ADMIN_TOKEN="$CASB_ADMIN_TOKEN"
        CASB_DASHBOARD_INTEGRATIONS_URL="${CASB_DASHBOARD_INTEGRATIONS_URL:-http://$(casb_svc_addr integration-manager)}")
      # Webhook receivers of a local stack (the demo's, the tests') listen on loopback; and
      # retries come soon and stop early, so that a failing receiver shows within seconds.
      envs+=(CASB_WEBHOOK_ALLOWED_NETWORKS="${CASB_WEBHOOK_ALLOWED_NETWORKS:-127.0.0.0/8}"
        CASB_WEBHOOK_RETRY_BASE_MS="${CASB_WEBHOOK_RETRY_BASE_MS:-300}"
        CASB_WEBHOOK_MAX_ATTEMPTS="${CASB_WEBHOOK_MAX_ATTEMPTS:-4}"
        CASB_WEBHOOK_TIMEOUT_MS="${CASB_WEBHOOK_TIMEOUT_MS:-3000}")
      ;;
  esac
  casb_proc_start "$name" "$(casb_svc_addr "$name")" "${envs[@]}"
}

casb_wait_ready() {
  local name="$1" url="$2" timeout="${3:-60}" i
  for ((i = 0; i < timeout * 4; i++)); do
    casb_http_ok "$url" && return 0
    if ! casb_svc_running "$name"; then
      tail -n 30 "$CASB_LOG_DIR/$name.log" >&2
      casb_die "$name exited (log: $CASB_LOG_DIR/$name.log)"
    fi
    sleep 0.25
  done
  tail -n 30 "$CASB_LOG_DIR/$name.log" >&2
  casb_die "$name not ready at $url after ${timeout}s"
}

casb_sim_start() {
  casb_proc_start saas-sim "$CASB_SIM_ADDR" -- \
    --addr "$CASB_SIM_ADDR" --tenant "$CASB_SIM_TENANT" --tenant "$CASB_SIM_GOOGLE_TENANT" \
    --dns-addr "$CASB_SIM_DNS_ADDR" \
    --github-app-public-key "$CASB_LOCAL/sim/github-app-key.pub.pem"
  casb_wait_ready saas-sim "$CASB_SIM_URL/_sim/health" 30
}

# The replicas of SVC that have a pid file, replica 1 first (one name a line).
casb_svc_instances() {
  local k name
  for ((k = 1; k <= CASB_REPLICA_MAX; k++)); do
    name="$(casb_svc_replica_name "$1" "$k")"
    [ -f "$(casb_svc_pidfile "$name")" ] && echo "$name"
  done
  return 0
}

# How many replicas of SVC to run: CASB_WORKERS for scanner-worker, else CASB_REPLICAS.
casb_svc_wanted() {
  if [ "$1" = scanner-worker ]; then
    echo "${CASB_WORKERS:-${CASB_REPLICAS:-1}}"
  else
    echo "${CASB_REPLICAS:-1}"
  fi
}

casb_replica_stop() {
  if casb_svc_running "$1"; then
    casb_log "stopping $1"
    casb_pid_stop "$(casb_svc_pidfile "$1")" "$(casb_svc_pattern "$1")" 40
  fi
  rm -f "$(casb_svc_pidfile "$1")"
}

# Starts replica NAME (<svc> or <svc>-<k>) and waits until it is ready: for scripts and tests
# that add replicas to a running stack. Reads the stack's secrets itself.
casb_replica_start() {
  casb_ensure_secrets
  casb_proc_start_service "$1"
  casb_wait_ready "$1" "http://$(casb_svc_addr "$1")/readyz" 90
}

# integration-manager first: it applies the migrations (under an advisory lock) before the
# others need the schema. CASB_REPLICAS (default 1) replicas of integration-manager,
# scheduler and findings-api, CASB_WORKERS (default CASB_REPLICAS) of scanner-worker; the
# replicas beyond those counts that still run (an earlier `up --replicas 3`) are stopped.
casb_services_start() {
  local svc name k n started=()
  for svc in $CASB_SERVICES; do
    n="$(casb_svc_wanted "$svc")"
    [[ "$n" =~ ^[1-9]$ ]] || casb_die "replicas of $svc: $n (1..$CASB_REPLICA_MAX)"
    for name in $(casb_svc_instances "$svc"); do
      if [ "$(casb_svc_replica "$name")" -gt "$n" ]; then casb_replica_stop "$name"; fi
    done
  done
  casb_proc_start_service integration-manager
  casb_wait_ready integration-manager "http://$(casb_svc_addr integration-manager)/readyz" 90
  for svc in $CASB_SERVICES; do
    n="$(casb_svc_wanted "$svc")"
    for ((k = 1; k <= n; k++)); do
      name="$(casb_svc_replica_name "$svc" "$k")"
      [ "$name" = integration-manager ] && continue
      casb_proc_start_service "$name"
      started+=("$name")
    done
  done
  for name in "${started[@]}"; do
    casb_wait_ready "$name" "http://$(casb_svc_addr "$name")/readyz" 90
  done
}

casb_services_stop() {
  local svc name
  # Reverse order: producers of work stop before its consumers. Every replica of each.
  for svc in integration-manager scheduler scanner-worker findings-api; do
    for name in $(casb_svc_instances "$svc"); do
      casb_replica_stop "$name"
    done
  done
}

# The URLs of the running replicas of SVC, comma-separated, replica 1 first.
casb_svc_urls() {
  local name urls=()
  for name in $(casb_svc_instances "$1"); do
    urls+=("http://$(casb_svc_addr "$name")")
  done
  [ ${#urls[@]} -gt 0 ] || urls=("http://$(casb_svc_addr "$1")")
  (IFS=,; echo "${urls[*]}")
}

casb_sim_stop() {
  if casb_svc_running saas-sim; then
    casb_log "stopping saas-sim"
    casb_pid_stop "$(casb_svc_pidfile saas-sim)" casb-saas-sim 10
  fi
}

casb_write_env() {
  local f="$CASB_LOCAL/casb.env"
  (umask 077 && cat >"$f" <<EOF
CASB_INTEGRATIONS_URL=http://$(casb_svc_addr integration-manager)
CASB_FINDINGS_URL=http://$(casb_svc_addr findings-api)
CASB_SCHEDULER_URL=http://$(casb_svc_addr scheduler)
CASB_SCANNER_URL=http://$(casb_svc_addr scanner-worker)
CASB_TOKEN=$CASB_ADMIN_TOKEN
CASB_SIM_URL=$CASB_SIM_URL
CASB_DATABASE_URL=$CASB_DATABASE_URL
CASB_KAFKA_BROKERS=$CASB_KAFKA_BROKERS
CASB_LOG_DIR=$CASB_LOG_DIR
CASB_GITHUB_APP_KEY=$CASB_LOCAL/sim/github-app-key.pem
CASB_SIM_DNS_ADDR=$CASB_SIM_DNS_ADDR
CASB_REPLICAS=${CASB_REPLICAS:-1}
CASB_WORKERS=$(casb_svc_wanted scanner-worker)
CASB_INTEGRATIONS_URLS=$(casb_svc_urls integration-manager)
CASB_FINDINGS_URLS=$(casb_svc_urls findings-api)
CASB_SCHEDULER_URLS=$(casb_svc_urls scheduler)
CASB_SCANNER_URLS=$(casb_svc_urls scanner-worker)
EOF
  )
}

# ---------------------------------------------------------------------------------------------
# Master key rotation (deploy/local/rotate-master-key)

# The value of NAME in secrets.env, or nothing.
casb_secrets_get() {
  sed -n "s/^$1=//p" "$CASB_LOCAL/secrets.env" | tail -n 1
}

# Rewrites secrets.env with CASB_MASTER_KEY=CURRENT and, when PREVIOUS is not empty,
# CASB_MASTER_KEY_PREVIOUS=PREVIOUS; every other line is kept. The file is replaced in one
# rename, so that it never holds neither key nor half a key.
casb_secrets_set_master_keys() {
  local current="$1" previous="$2" f="$CASB_LOCAL/secrets.env" tmp
  tmp="$(mktemp "$CASB_LOCAL/.secrets.env.XXXXXX")" || casb_die "mktemp failed"
  chmod 600 "$tmp"
  {
    grep -v -e '^CASB_MASTER_KEY=' -e '^CASB_MASTER_KEY_PREVIOUS=' "$f" || true
    echo "CASB_MASTER_KEY=$current"
    [ -z "$previous" ] || echo "CASB_MASTER_KEY_PREVIOUS=$previous"
  } >"$tmp" || {
    rm -f "$tmp"
    casb_die "writing $tmp failed"
  }
  sync "$tmp" 2>/dev/null || true
  mv -f "$tmp" "$f" || casb_die "replacing $f failed"
}

# Restarts the services that hold the master key (integration-manager, scanner-worker,
# findings-api) with the keys of secrets.env, each once it is ready again.
# casb_proc_start_service passes CASB_MASTER_KEY; CASB_MASTER_KEY_PREVIOUS reaches them
# through the environment, which `env` hands down: exported while secrets.env has it, removed
# when it does not. A service that was not running is left stopped.
casb_key_services_restart() {
  local svc previous keys
  CASB_MASTER_KEY="$(casb_secrets_get CASB_MASTER_KEY)"
  CASB_ADMIN_TOKEN="$(casb_secrets_get CASB_ADMIN_TOKEN)"
  previous="$(casb_secrets_get CASB_MASTER_KEY_PREVIOUS)"
  if [ -n "$previous" ]; then
    export CASB_MASTER_KEY_PREVIOUS="$previous"
    keys="the new and the previous master key"
  else
    unset CASB_MASTER_KEY_PREVIOUS
    keys="the master key only"
  fi
  for svc in $(casb_svc_instances integration-manager) $(casb_svc_instances scanner-worker) \
    $(casb_svc_instances findings-api); do
    if ! casb_svc_running "$svc"; then
      casb_log "$svc is not running: it will read the keys when it starts"
      continue
    fi
    casb_log "restarting $svc with $keys"
    casb_pid_stop "$(casb_svc_pidfile "$svc")" "$(casb_svc_pattern "$svc")" 40
    casb_proc_start_service "$svc"
    casb_wait_ready "$svc" "http://$(casb_svc_addr "$svc")/readyz" 90
  done
}

# Runs `casb-integration-manager rotate-credentials` with the keys of secrets.env; its JSON
# summary goes to stdout, its log lines to stderr. Returns its exit status.
casb_rotate_credentials() {
  local bin
  bin="$(casb_svc_binary integration-manager)"
  [ -x "$bin" ] || casb_die "$bin not built"
  env CASB_DATABASE_URL="$CASB_DATABASE_URL" CASB_LOG_LEVEL="${CASB_LOG_LEVEL:-info}" \
    CASB_MASTER_KEY="$(casb_secrets_get CASB_MASTER_KEY)" \
    CASB_MASTER_KEY_PREVIOUS="$(casb_secrets_get CASB_MASTER_KEY_PREVIOUS)" \
    "$bin" rotate-credentials
}

# ---- tests/deploy (Kubernetes manifests): BEGIN casb_install_deploy_test_deps ----------------
# kubectl (its embedded kustomize renders deploy/k8s) and, in a venv under .local, the offline
# OpenAPI validator kubernetes-validate with pytest. A kubectl already on the machine (e.g. the
# Google Cloud SDK's) is used as it is: Debian's kubernetes-client would conflict with it, and
# deploy/k8s keeps to the kustomize syntax that both old (1.20) and new kubectl render.
CASB_DEPLOY_VENV="$CASB_LOCAL/venv-deploy"
casb_install_deploy_test_deps() {
  local missing=()
  command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
  python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
  casb_apt_install "${missing[@]}"
  casb_venv_ensure "$CASB_DEPLOY_VENV"
  if ! "$CASB_DEPLOY_VENV/bin/python" -c 'import kubernetes_validate, yaml, pytest' 2>/dev/null; then
    casb_log "pip install kubernetes-validate in $CASB_DEPLOY_VENV"
    "$CASB_DEPLOY_VENV/bin/pip" install -q kubernetes-validate==1.37.0 pyyaml pytest ||
      casb_die "pip install kubernetes-validate failed"
  fi
}
# ---- END casb_install_deploy_test_deps -------------------------------------------------------

# ---- tests/apifuzz (Schemathesis): BEGIN casb_install_apifuzz_deps ---------------------------
# Schemathesis in a venv under .local, pinned: its CLI and checks change between majors, and
# tests/apifuzz/run.py is written against 4.x. Hypothesis too: the short run's seed gives the
# same cases only with the same generator.
CASB_APIFUZZ_VENV="$CASB_LOCAL/venv-apifuzz"
CASB_SCHEMATHESIS_VERSION=4.32.5
CASB_HYPOTHESIS_VERSION=6.170.17
casb_install_apifuzz_deps() {
  python3 -c 'import ensurepip' 2>/dev/null || casb_apt_install python3-venv
  casb_venv_ensure "$CASB_APIFUZZ_VENV"
  if [ "$("$CASB_APIFUZZ_VENV/bin/st" --version 2>/dev/null | awk '{print $NF}')" != "$CASB_SCHEMATHESIS_VERSION" ]; then
    casb_log "pip install schemathesis==$CASB_SCHEMATHESIS_VERSION in $CASB_APIFUZZ_VENV"
    "$CASB_APIFUZZ_VENV/bin/pip" install -q "schemathesis==$CASB_SCHEMATHESIS_VERSION" \
      "hypothesis==$CASB_HYPOTHESIS_VERSION" ||
      casb_die "pip install schemathesis failed"
  fi
}
# ---- END casb_install_apifuzz_deps -----------------------------------------------------------

# The leak checks of the services (tests/valgrind): Debian's valgrind.
casb_install_valgrind() {
  command -v valgrind >/dev/null 2>&1 || casb_apt_install valgrind
}
# ---- END casb_install_valgrind ----------------------------------------------------------------

# ---- tests/fuzz (libFuzzer): BEGIN casb_install_fuzz_deps ------------------------------------
# Debian's clang 14 and the runtimes -fsanitize=fuzzer,address,undefined links: libFuzzer,
# ASan and UBSan live in libclang-rt-14-dev, which clang only recommends (so
# --no-install-recommends would leave it out). llvm brings llvm-symbolizer, which turns the
# addresses of a crash report into file:line.
casb_install_fuzz_deps() {
  # shellcheck disable=SC2046 # package names have no spaces
  casb_apt_install $(casb_apt_missing clang libclang-rt-14-dev llvm)
}
# ---- END casb_install_fuzz_deps --------------------------------------------------------------

# The benchmarks (tests/bench/run): wrk drives findings-api's queries; pgbench (in
# postgresql-15, already installed) runs their SQL as the baseline; perf profiles a service
# when a figure needs explaining.
casb_install_bench_deps() {
  casb_install_packages
  # shellcheck disable=SC2046 # package names have no spaces
  casb_apt_install $(casb_apt_missing wrk linux-perf)
}
