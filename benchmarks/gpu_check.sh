#!/usr/bin/env bash
# The device check, one script: the device-dependent tests, the speed benchmark and the smoke-sized main job, all
# on one device, then one table. Written to finish in under 8 minutes on a GPU machine.
#
#   bash benchmarks/gpu_check.sh                  # on cuda (a machine with an NVIDIA GPU)
#   bash benchmarks/gpu_check.sh --device cpu     # the same check here, without a GPU
#
# PY picks the interpreter (default: .venv/bin/python if there, else python3); OUT where logs and JSON go
# (default: a new temporary folder). Exit status 0 only if every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="${2:-}"; shift 2 ;;
    --device=*) DEVICE="${1#*=}"; shift ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--device cuda|cpu]" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "--device must be cuda or cpu, got '$DEVICE'" >&2; exit 2 ;; esac
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export L2L_OFFLINE=1 PYTHONUNBUFFERED=1

names=() codes=() secs=()
step() {  # step NAME COMMAND...: run it, log to $OUT/NAME.log, remember status and seconds
  local name=$1 start end code
  shift
  echo "== $name: $*" >&2
  start=$(date +%s.%N)
  "$@" >"$OUT/$name.log" 2>&1
  code=$?
  end=$(date +%s.%N)
  names+=("$name") codes+=("$code") secs+=("$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.0f", b-a}')")
  [ "$code" -eq 0 ] || tail -n 20 "$OUT/$name.log" >&2
}

"$PY" -c "import torch, l2l_helpers as l2l; d = l2l.resolve_device('$DEVICE'); print('device:', d, \
torch.cuda.get_device_name(d) if d.type == 'cuda' else '', '| torch', torch.__version__)" || exit 1
step tests env L2L_TEST_DEVICE="$DEVICE" "$PY" -m pytest -q -p no:cacheprovider tests/test_device.py
step bench "$PY" benchmarks/bench_speed.py --device "$DEVICE" --epochs 2 --cli 0 0 --repeats 10 \
  --out "$OUT/speed.json"
step smoke_run "$PY" -m l2l_helpers run-notebooks --profile smoke --device "$DEVICE" --out "$OUT/run"

"$PY" - "$OUT" "$DEVICE" "${names[*]}" "${codes[*]}" "${secs[*]}" <<'EOF'
import json, re, sys
from pathlib import Path

out, device, names, codes, secs = Path(sys.argv[1]), sys.argv[2], *(a.split() for a in sys.argv[3:6])
rows = []
for name, code, sec in zip(names, codes, secs):
    log = (out / f"{name}.log").read_text(errors="replace")
    detail = ""
    if name == "tests":
        found = re.findall(r"(\d+ passed[^\n=]*)", log)
        detail = found[-1].strip() if found else "no summary"
    elif name == "bench" and (out / "speed.json").exists():
        s = json.loads((out / "speed.json").read_text())
        ref = s.get("epoch_reference_s")
        parts = [f"reference epoch {ref:.2f} s"] if ref else []
        for k in ("cells", "fused", "native"):
            if f"epoch_{k}_s" in s and ref:
                parts.append(f"{k} {s[f'epoch_{k}_s']:.2f} s ({ref / s[f'epoch_{k}_s']:.2f}x)")
        if "LSTM_step_s" in s:
            parts.append(f"LearnedOptimizer step {1e3 * s['LSTM_step_s']:.2f} ms vs Adam {1e3 * s['Adam_step_s']:.3f} ms")
        detail = "; ".join(parts)
    elif name == "smoke_run":
        found = re.findall(r"(\d+ notebooks in [^;]*)", log)
        detail = found[-1] if found else "no summary"
    rows.append((name, "ok" if code == "0" else f"FAILED ({code})", sec, detail))
print(f"\ndevice check on {device} (logs in {out})")
print(f"| {'step':<10} | {'status':<11} | {'seconds':>7} | details")
print(f"|{'-' * 12}|{'-' * 13}|{'-' * 9}|---------")
for name, status, sec, detail in rows:
    print(f"| {name:<10} | {status:<11} | {sec:>7} | {detail}")
EOF
for code in "${codes[@]}"; do [ "$code" -eq 0 ] || exit 1; done
