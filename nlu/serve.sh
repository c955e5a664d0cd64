#!/usr/bin/env bash
# Start `rasa run --enable-api` in the background on 127.0.0.1:$NLU_PORT and wait until /status answers.
# Usage: nlu/serve.sh RASA_VENV MODEL.tar.gz   (what `make nlu-serve` passes; `make nlu-stop` stops it)
# A server already answering with this model is reused; one we started with another model is replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1 model=$2 port=${NLU_PORT:-5005} wait_s=${NLU_START_TIMEOUT:-240}
mkdir -p var
status() { curl -fsS --max-time 2 "http://127.0.0.1:$port/status" 2>/dev/null; }

if body=$(status); then
  if [[ $body == *"$(basename "$model")"* ]]; then echo "rasa: already serving $(basename "$model") on :$port"; exit 0; fi
  if [[ -f var/rasa.pid ]] && kill -0 "$(cat var/rasa.pid)" 2>/dev/null; then
    echo "rasa: replacing our server on :$port (other model)"; kill "$(cat var/rasa.pid)"; sleep 3
  else
    echo "rasa: port $port answers with another model and is not ours: $body" >&2; exit 1
  fi
fi

export RASA_TELEMETRY_ENABLED=false
nohup "$venv/bin/rasa" run --enable-api -m "$model" --port "$port" -i 127.0.0.1 >var/rasa.log 2>&1 &
echo $! >var/rasa.pid
start=$SECONDS
until status >/dev/null; do
  if ! kill -0 "$(cat var/rasa.pid)" 2>/dev/null; then echo "rasa: exited; see var/rasa.log" >&2; tail -20 var/rasa.log >&2; exit 1; fi
  if (( SECONDS - start > wait_s )); then echo "rasa: no /status after ${wait_s}s; see var/rasa.log" >&2; exit 1; fi
  sleep 1
done
echo "rasa: serving $(basename "$model") on 127.0.0.1:$port (pid $(cat var/rasa.pid), ready in $((SECONDS - start))s)"
