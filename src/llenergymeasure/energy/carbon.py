"""CO2 from energy: grams = kWh x carbon intensity. Always an estimate, labelled as one.

The intensity (gCO2e/kWh) comes from, in order: ``energy.carbon_intensity_g_per_kwh``, the
``LLEM_CARBON_INTENSITY`` environment variable, or codecarbon's country data for
``energy.carbon_country`` (ISO 3166 alpha-3, e.g. FRA). With none of them there is no CO2 figure.

The environment variable is checked when a config loads (``env_carbon_intensity``), so a
value that is not a finite, non-negative number stops the run before anything is measured.
"""

from __future__ import annotations

import json
import math
import os

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.energy.cpu_estimate import codecarbon_data_dir
from llenergymeasure.exceptions import ConfigError


def carbon_intensity(config: EnergyConfig) -> tuple[float, str] | None:
    """(gCO2e per kWh, where that number came from), or None."""
    if config.carbon_intensity_g_per_kwh is not None:
        return config.carbon_intensity_g_per_kwh, "energy.carbon_intensity_g_per_kwh"
    env = env_carbon_intensity()
    if env is not None:
        return env, "LLEM_CARBON_INTENSITY"
    if config.carbon_country:
        return _country_intensity(config.carbon_country)
    return None


def env_carbon_intensity() -> float | None:
    """``LLEM_CARBON_INTENSITY`` in gCO2e/kWh, None when unset; ConfigError when it is not a usable number."""
    env = os.environ.get("LLEM_CARBON_INTENSITY")
    if not env:
        return None
    try:
        value = float(env)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"LLEM_CARBON_INTENSITY={env!r} is not a finite, non-negative number of gCO2e/kWh "
            "(e.g. 56 for France, 400 for the US); fix or unset the environment variable"
        )
    return value


def _country_intensity(country: str) -> tuple[float, str]:
    data = codecarbon_data_dir()
    path = data / "private_infra" / "global_energy_mix.json" if data else None
    if path is None or not path.is_file():
        raise ConfigError("energy.carbon_country needs codecarbon's data: pip install codecarbon")
    mix = json.loads(path.read_text(encoding="utf-8"))
    entry = mix.get(country.upper())
    if entry is None:
        raise ConfigError(f"energy.carbon_country: {country!r} is not an ISO 3166 alpha-3 code in codecarbon's data "
                          "(e.g. FRA, USA, DEU)")
    return float(entry["carbon_intensity"]), f"codecarbon {entry['country_name']} ({entry.get('year', '?')})"


def co2_grams(energy_j: float | None, intensity_g_per_kwh: float | None) -> float | None:
    if energy_j is None or intensity_g_per_kwh is None:
        return None
    return energy_j / 3.6e6 * intensity_g_per_kwh
