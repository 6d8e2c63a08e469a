"""The paper's early-stopping tables at its scale, ours beside its numbers:
`python scripts/paper_tables.py [--results results]` (htrain.paper_tables builds them).

Reads results/paper_tables/ (collected from `sweep=paper_tables profile=paper`: 7,500 samples
per class, 250 epochs, K = 8) and writes
  results/tables/paper_claims.md    the paper's two claims, setting by setting and counted,
                                    with the fires of the gap rule (results/gap_rule/)
  results/tables/paper_tables_<rule>.md/.csv   per setting and monitored layer: the epoch the
                                               rule fired, the test accuracy then, the final
                                               types and accuracy; the paper's beside ours
  results/figures/paper_tables_shat_<panel>.png    s_hat over the 250 epochs against the
                                               thresholds, with the test accuracy
  results/figures/paper_tables_esd_<panel>_<layer>.png   the ESD at epochs 0, the first
                                               fire (C = 0.4), 50 and the last
When results/paper_tables_k/ holds NN1's settings at K = 2 and 5 (`sweep=paper_tables_k`), also
  results/tables/paper_k_axis.md    Figure 2.13's K axis: final types, accuracy and fires at
                                    K = 2, 5 and 8
Settings whose runs are not finished yet show as "not run".  When results/paper_tables_gpu/
holds the grid's seeds 0-2 (``scripts/gpu_paper_tables.sh``, collected with --partial: runs may
stop short of 250 epochs), also
  results/tables/paper_fires_seeds.md    per setting and seed: the fires with and without K,
                                         the best test accuracy, up to the epochs run
  results/tables/paper_gpu_vs_cpu.md     the same seed trained on the GPU and on the CPU
  results/figures/paper_tables_gpu_shat_nn2_<data>[_gap].png   s_hat of NN2's seed 0 with
                                         K (and without: _gap)
Trains nothing.
"""

from __future__ import annotations

from htrain.io import write_from_results
from htrain.paper_tables import write_paper_tables

if __name__ == "__main__":
    write_from_results(__doc__, write_paper_tables)
