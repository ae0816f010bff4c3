"""Data-efficiency protocol (Rettenberger et al.): fine-tune every
pretrained checkpoint (plus random init) on a fraction of the labelled
training *volumes* for several seeds, test, and compare.

Split by job: :mod:`.maths` (AEI, summary over seeds), :mod:`.planning`
(jobs, true volume counts, command lines), :mod:`.running` (train + test,
resumable, reading results) and :mod:`.reporting` (CSV, JSON, table, plot).
The statistics over seeds live in :mod:`medssl.analysis.stats`.
"""
from medssl.analysis.stats import welch_greater
from .maths import (OWN_REFERENCE, RANDOM_INIT, annotation_efficiency_integral,
                    group_scores, summarize)
from .planning import (Job, backbone_has_init_cfg, job_cfg_options, make_jobs,
                       parse_checkpoints, repo_root, save_best_key,
                       test_command, train_command, train_split_cases,
                       volume_count)
from .reporting import (CSV_FIELDS, format_summary, plot_curves, read_csv,
                        write_csv, write_summary)
from .running import (SubprocessRunner, best_checkpoint_glob, checkpoint_kind,
                      collect_results, find_checkpoint, job_record,
                      read_metric, read_tested_checkpoint, run_jobs)

__all__ = [
    'RANDOM_INIT', 'OWN_REFERENCE', 'Job', 'annotation_efficiency_integral',
    'welch_greater', 'group_scores', 'summarize', 'job_cfg_options', 'make_jobs',
    'train_command', 'test_command', 'read_metric', 'find_checkpoint',
    'SubprocessRunner', 'run_jobs', 'collect_results', 'write_csv', 'read_csv',
    'write_summary', 'format_summary', 'plot_curves', 'parse_checkpoints',
    'backbone_has_init_cfg', 'train_split_cases', 'volume_count',
    'job_record', 'repo_root', 'CSV_FIELDS', 'save_best_key',
    'checkpoint_kind', 'best_checkpoint_glob', 'read_tested_checkpoint'
]
