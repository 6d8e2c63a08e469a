"""The spike rule that knows K against the gap rule, on the same quick-profile runs:
`python scripts/before_after.py [--results results]` -> results/tables/before_after.md/.csv.

"Before" is every run replayed without K (results/gap_rule/<sweep>/, collected with
`scripts/collect.py --n-classes none`), "after" with K (results/<sweep>/): the same
trajectories, two analyses.  Per panel: how often the paper's rule (C = 0.4) and the
calibrated rule fire on runs that end above 99% test accuracy, the test accuracy lost against
the best epoch and the epochs saved when each stops the run, and the share of runs whose final
spectrum is not LT / is HT per band of final test accuracy (htrain.before_after).  Trains
nothing.
"""

from __future__ import annotations

from htrain.before_after import write_before_after
from htrain.io import write_from_results

if __name__ == "__main__":
    write_from_results(__doc__, write_before_after)
