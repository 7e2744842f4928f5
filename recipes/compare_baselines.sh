#!/usr/bin/env bash
# The paper's Table 5 comparison from ONE starting checkpoint: the pooled base model (avg, cls_before_pooler),
# the post-processing baselines (BERT-whitening, all-but-the-top, BERT-flow), SBERT-NLI, and unsupervised and
# supervised SimCSE, in one report (STS 7-task average, alignment, uniformity, IsoScore, spectra, anisotropy).
#
#   MODEL=all-MiniLM-L6-v2 OUT=runs/compare bash recipes/compare_baselines.sh
#
# Settings (environment variables; defaults fit the offline data of ../shared/data, see SOURCES.md):
#   MODEL      starting checkpoint                              (all-MiniLM-L6-v2)
#   CORPUS     unlabelled sentences: post-processing fits and unsup SimCSE training
#   NLI_LABELS labelled NLI pairs for SBERT (SentEval SNLI directory or a labelled CSV)
#   NLI_TRIPS  sent0,sent1,hard_neg triplets for supervised SimCSE
#   UNSUP_STEPS / SUP_STEPS / SBERT_STEPS, BATCH (SimCSE batch size), MINI (gradient-caching chunk; empty: off)
#   OUT        output directory (one sub-directory per checkpoint, report.html, report.json, table.txt)
# Existing outputs are kept (each step is skipped when its directory exists), so a rerun resumes.
set -euo pipefail
DATA=${SIMCSE_DATA:-$HOME/.cache/simcse-analysis/data}
MODEL=${MODEL:-all-MiniLM-L6-v2}
OUT=${OUT:-runs/compare}
CORPUS=${CORPUS:-$OUT/wiki31k.txt}
NLI_LABELS=${NLI_LABELS:-$DATA/nli/snli-senteval}
NLI_TRIPS=${NLI_TRIPS:-$DATA/nli/snli_devtest_triplets.csv}
UNSUP_STEPS=${UNSUP_STEPS:-250} SUP_STEPS=${SUP_STEPS:-100} SBERT_STEPS=${SBERT_STEPS:-1000}
BATCH=${BATCH:-64} MINI=${MINI:-}
CLI=${CLI:-simcse-analyze}
mkdir -p "$OUT"
if [ ! -f "$CORPUS" ]; then  # the ~31k Wikipedia sentences of the offline data
  cat "$DATA/unsup/wiki1m_for_simcse.head.txt" "$DATA/unsup/enwiki_gensim_testdump_sentences.txt" > "$CORPUS"
fi
mini=(); [ -n "$MINI" ] && mini=(--mini-batch-size "$MINI")
step() { local dir=$1; shift; if [ -e "$dir" ]; then echo "kept $dir"; else echo "+ $*"; "$@"; fi; }

# post-processing baselines on mean pooling (as Su et al., Li et al.), fitted on the unlabelled corpus
step "$OUT/whiten" $CLI whiten "$MODEL" --pooler avg --corpus "$CORPUS" --out "$OUT/whiten"
step "$OUT/abtt"   $CLI abtt   "$MODEL" --pooler avg --corpus "$CORPUS" --out "$OUT/abtt"
step "$OUT/flow"   $CLI flow   "$MODEL" --pooler avg --corpus "$CORPUS" --out "$OUT/flow"
# trained baselines and SimCSE, all from MODEL
step "$OUT/sbert" $CLI train sbert --model "$MODEL" --train-file "$NLI_LABELS" --out "$OUT/sbert" \
  --max-steps "$SBERT_STEPS" --quiet
step "$OUT/unsup" $CLI train unsup --model "$MODEL" --train-file "$CORPUS" --out "$OUT/unsup" \
  --pooler cls_before_pooler --batch-size "$BATCH" --max-steps "$UNSUP_STEPS" "${mini[@]}" --quiet
step "$OUT/sup" $CLI train sup --model "$MODEL" --train-file "$NLI_TRIPS" --out "$OUT/sup" \
  --pooler cls_before_pooler --batch-size "$BATCH" --max-steps "$SUP_STEPS" "${mini[@]}" --quiet

# one report over all of them (run directories resolve to their best/ checkpoint)
$CLI report "$MODEL@avg" "$MODEL@cls_before_pooler" "$OUT/whiten" "$OUT/abtt" "$OUT/flow" "$OUT/sbert" \
  "$OUT/unsup" "$OUT/sup" --no-umap --no-layers --title "Baselines vs SimCSE from $MODEL" \
  --out "$OUT/report.html" --json "$OUT/report.json"
${PYTHON:-python} "$(dirname "$0")/baseline_table.py" "$OUT/report.json" | tee "$OUT/table.txt"
