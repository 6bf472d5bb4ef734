#!/usr/bin/env bash
# A local single-node Apache Kafka (KRaft mode: broker and controller in one JVM, no ZooKeeper)
# for the collector's Kafka tests and benchmark. Idempotent: a broker already running on the
# data directory is left alone. No container: the broker's jars come from Maven Central through
# Maven (org.apache.kafka:kafka_2.13 and its runtime dependencies), cached by version.
#
# Usage:
#   bash .ci/start-kafka.sh            fetch the jars if needed, start the broker, wait until it
#                                      serves; last stdout line = bootstrap address (host:port)
#   bash .ci/start-kafka.sh --stop     stop the broker of the data directory (SIGTERM, then SIGKILL)
#   bash .ci/start-kafka.sh --fetch    only fetch the jars; last stdout line = their directory
#   bash .ci/start-kafka.sh --print-libs   where the jars are/would be; never fetches
#
# Environment (defaults in brackets):
#   OTEL_AUDIT_KAFKA_VERSION          [4.4.0]   Kafka release (4.x: Java 17 or newer)
#   OTEL_AUDIT_KAFKA_PORT             [9092]    client listener on 127.0.0.1
#   OTEL_AUDIT_KAFKA_CONTROLLER_PORT  [9093]    KRaft controller listener on 127.0.0.1
#   OTEL_AUDIT_KAFKA_DATA_DIR         [<cache>/kafka-<version>/run]  log dirs, config, pid, logs
#   OTEL_AUDIT_KAFKA_PARTITIONS       [6]       partitions of auto-created topics
#   OTEL_AUDIT_KAFKA_HEAP             [512m]    JVM heap (-Xmx)
#   OTEL_AUDIT_CACHE                  [${XDG_CACHE_HOME:-~/.cache}/otel-audit]
# Jars: <cache>/kafka-<version>/libs/*.jar (a complete set is marked by libs/.complete).
set -euo pipefail

VERSION=${OTEL_AUDIT_KAFKA_VERSION:-4.4.0}
PORT=${OTEL_AUDIT_KAFKA_PORT:-9092}
CONTROLLER_PORT=${OTEL_AUDIT_KAFKA_CONTROLLER_PORT:-9093}
PARTITIONS=${OTEL_AUDIT_KAFKA_PARTITIONS:-6}
HEAP=${OTEL_AUDIT_KAFKA_HEAP:-512m}
CACHE_ROOT=${OTEL_AUDIT_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/otel-audit}
HOME_DIR=$CACHE_ROOT/kafka-$VERSION
LIBS=$HOME_DIR/libs
DATA=${OTEL_AUDIT_KAFKA_DATA_DIR:-$HOME_DIR/run}
START_TIMEOUT=${OTEL_AUDIT_KAFKA_START_TIMEOUT:-90}

mode=start
for arg in "$@"; do
  case "$arg" in
    --stop) mode=stop ;;
    --fetch) mode=fetch ;;
    --print-libs) mode=print ;;
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "kafka: $*" >&2; }

if [ "$mode" = print ]; then
  echo "$LIBS"
  exit 0
fi

pid_alive() { [ -f "$DATA/kafka.pid" ] && kill -0 "$(cat "$DATA/kafka.pid")" 2>/dev/null; }

if [ "$mode" = stop ]; then
  if pid_alive; then
    pid=$(cat "$DATA/kafka.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "broker $pid did not stop within 30s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped broker $pid ($DATA)"
  else
    log "no broker running for $DATA"
  fi
  rm -f "$DATA/kafka.pid"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Java 17+ (Kafka 4.x brokers need it)

command -v java >/dev/null 2>&1 || { log "java is not installed: cannot run a Kafka $VERSION broker"; exit 1; }
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n1)
if [ -z "$java_major" ] || [ "$java_major" -lt 17 ]; then
  log "java ${java_major:-?} found; Kafka $VERSION needs Java 17 or newer"
  exit 1
fi

# ---------------------------------------------------------------------------------------------
# The jars, from Maven Central through Maven (cached by version)

fetch_jars() {
  if [ -f "$LIBS/.complete" ]; then return 0; fi
  if ! command -v mvn >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq maven >/dev/null
  fi
  mkdir -p "$HOME_DIR"
  exec 8>"$HOME_DIR/.fetch.lock"
  if command -v flock >/dev/null 2>&1; then flock 8; fi
  if [ -f "$LIBS/.complete" ]; then return 0; fi
  local work
  work=$(mktemp -d "$HOME_DIR/fetch.XXXXXX")
  # kafka_2.13: the broker (kafka.Kafka, kafka.tools.StorageTool); kafka-tools: the admin
  # commands (topics, consumer groups) the tests use to look at partitions and lag;
  # log4j-core + log4j-slf4j-impl (Kafka logs through SLF4J 1.7): the broker's log file.
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>otel-audit.ci</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>$VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
  log "fetching Kafka $VERSION jars with Maven into $LIBS"
  local start=$SECONDS
  if ! (cd "$work" && mvn -B -q -Dmaven.repo.local="$CACHE_ROOT/m2" \
          dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$work/libs") >"$HOME_DIR/fetch.log" 2>&1; then
    tail -n 40 "$HOME_DIR/fetch.log" >&2
    log "fetching the Kafka $VERSION jars failed (log: $HOME_DIR/fetch.log)"
    rm -rf "$work"
    exit 1
  fi
  ls "$work/libs"/kafka_2.13-"$VERSION".jar >/dev/null
  rm -rf "$LIBS"
  mv "$work/libs" "$LIBS"
  touch "$LIBS/.complete"
  rm -rf "$work"
  log "fetched $(ls "$LIBS" | wc -l) jars in $((SECONDS - start))s ($(du -sh "$LIBS" | cut -f1))"
}

fetch_jars
if [ "$mode" = fetch ]; then
  echo "$LIBS"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Start (or find running) the broker

ready() {
  # The port answers and the broker logged that it started (KafkaRaftServer).
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && grep -q "Kafka Server started" "$DATA/logs/server.log" 2>/dev/null
}

if pid_alive; then
  if ready; then
    log "broker already running (pid $(cat "$DATA/kafka.pid"), $DATA)"
    echo "127.0.0.1:$PORT"
    exit 0
  fi
fi

mkdir -p "$DATA/logs" "$DATA/data"
cat >"$DATA/server.properties" <<PROPS
# Written by .ci/start-kafka.sh: one node that is broker and KRaft controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA/data
num.partitions=$PARTITIONS
auto.create.topics.enable=true
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
PROPS
cat >"$DATA/log4j2.properties" <<LOG4J
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $DATA/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = org.apache.kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
LOG4J

CP="$LIBS/*"
JAVA_OPTS=(-Xms128m "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
           "-Dlog4j2.configurationFile=$DATA/log4j2.properties" "-Dkafka.logs.dir=$DATA/logs")

if [ ! -f "$DATA/data/meta.properties" ]; then
  cluster_id=$(java -cp "$CP" "-Dlog4j2.configurationFile=$DATA/log4j2.properties" kafka.tools.StorageTool random-uuid 2>>"$DATA/logs/format.log" | tail -n1)
  [ -n "$cluster_id" ] || { cat "$DATA/logs/format.log" >&2; log "could not generate a cluster id"; exit 1; }
  if ! java -cp "$CP" "-Dlog4j2.configurationFile=$DATA/log4j2.properties" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$DATA/server.properties" >>"$DATA/logs/format.log" 2>&1; then
    cat "$DATA/logs/format.log" >&2
    log "formatting the storage in $DATA/data failed"
    exit 1
  fi
fi

: >"$DATA/logs/server.log"
# setsid: the broker outlives this script; stdout/stderr (JVM errors) to kafka.out.
setsid java "${JAVA_OPTS[@]}" -cp "$CP" kafka.Kafka "$DATA/server.properties" \
  >"$DATA/logs/kafka.out" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$DATA/kafka.pid"

deadline=$((SECONDS + START_TIMEOUT))
until ready; do
  if ! kill -0 "$pid" 2>/dev/null; then
    tail -n 30 "$DATA/logs/kafka.out" "$DATA/logs/server.log" >&2 || true
    rm -f "$DATA/kafka.pid"
    log "broker exited during start-up"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    tail -n 30 "$DATA/logs/kafka.out" "$DATA/logs/server.log" >&2 || true
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$DATA/kafka.pid"
    log "broker not ready within ${START_TIMEOUT}s"
    exit 1
  fi
  sleep 0.2
done
log "broker $VERSION ready on 127.0.0.1:$PORT (pid $pid, data $DATA)"
echo "127.0.0.1:$PORT"
