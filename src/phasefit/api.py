"""phasefit's Python API: train a recipe on data from a path or from memory, get a classifier back.

The command line is a thin layer over the same calls: ``phasefit train --recipe 3phase --data DIR --output RUN``
is ``phasefit.train("3phase", data="DIR", output="RUN")``. Settings are keyword dicts validated by the same
pydantic models, with the same messages, as ``--set`` (``ft={"epochs": 10}`` is ``--set ft.epochs=10``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phasefit.config import ConfigError, RunConfig

if TYPE_CHECKING:
    from phasefit.models.classifier import PhaseFitClassifier

SECTIONS = ("model", "dae", "mlm", "cl", "joint", "supcon", "simclr", "ft", "trainer")


def train(
    recipe: str | None = None,
    data: Any = "builtin:snips",
    *,
    validation: Any = None,
    test: Any = None,
    output: str | os.PathLike | None = None,
    seed: int = 0,
    config: RunConfig | dict[str, Any] | str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: bool = False,
    callbacks: list[Any] | None = None,
    data_config: dict[str, Any] | None = None,
    **settings: Any,
) -> PhaseFitClassifier:
    """Train ``recipe`` and return the classifier; its run directory holds config, splits, curves and scores.

    Args:
        recipe: a recipe name (``phasefit recipes`` lists them), e.g. ``"ft"``, ``"3phase"``, ``"ft-frozen"``;
            default ``config``'s recipe, else ``"ft"``.
        data: a folder of ``train``/``validation``/``test`` files or one file (``.csv``, ``.tsv``, ``.jsonl``,
            ``.json``, ``.parquet``), ``"builtin:snips"`` or ``"hf:NAME"``; or data in memory: a pandas
            ``DataFrame``, a ``datasets.Dataset`` or ``DatasetDict``, a dict of columns, a list of dicts, or a
            ``(texts, labels)`` tuple. Columns are ``text`` and ``label`` unless ``data_config`` says otherwise.
        validation, test: optional splits in memory, in any form ``data`` takes; missing ones are made from the
            training data by seeded stratified splits (``data_config={"validation_fraction": 0.2, ...}``).
        output: the run directory (default ``runs/<recipe>-<time>``). An existing run is replaced only with
            ``overwrite=True``; ``resume=True`` continues an interrupted one (pass the same data again).
        seed: the seed of the splits, the initialisation and the data order.
        config: a base config (a ``RunConfig``, a dict, or a YAML file) under the keyword settings.
        callbacks: ``transformers.TrainerCallback`` objects added to every phase's Trainer.
        data_config: the ``data`` section of the config (``--set data.KEY=...``): columns, split fractions,
            ``max_length``, few-shot draws, ``unlabelled_path``, ...
        **settings: config sections as dicts (``ft={"epochs": 10}``, ``cl={"min_ratio": 2.0}``,
            ``trainer={"report_to": ["tensorboard"]}``; ``model="path/or/hub-id"`` is short for
            ``model={"name": ...}``) and top-level keys (``progress=False``, ``plots=False``, ``phases=[...]``).

    Returns:
        The trained :class:`~phasefit.PhaseFitClassifier`. ``classifier.run`` is the run's result: ``run_dir``
        and ``metrics`` (validation and test scores, per-phase cost).

    Raises:
        phasefit.PhasefitError: a problem you can fix (bad data, an unknown key, an output folder in use), with a
            message that names it and the fix; nothing is half-written.

    Example:
        >>> import phasefit
        >>> clf = phasefit.train("ft", data=df, output="runs/x", ft={"epochs": 3})   # doctest: +SKIP
        >>> clf.predict("book a table for two")                                     # doctest: +SKIP
        'BookRestaurant'
        >>> clf.run.metrics["test"]["accuracy"]                                     # doctest: +SKIP
        0.94
    """
    from phasefit.recipes import build_config
    from phasefit.pipeline import train as train_run

    settings = dict(settings)
    if isinstance(settings.get("model"), (str, os.PathLike)):
        settings["model"] = {"name": os.fspath(settings["model"])}
    for key, value in settings.items():
        if key in SECTIONS and not isinstance(value, dict):
            raise ConfigError(f"{key}= takes a dict of settings, e.g. {key}={{...}}; got {type(value).__name__}")
    if "data" in settings:
        raise ConfigError("the data section's settings go in data_config={...}; data= is the data itself")
    data_settings = dict(data_config or {})
    tables = None
    if isinstance(data, (str, os.PathLike)):
        if validation is not None or test is not None:
            raise ConfigError("validation= and test= go with data in memory; with a data path, put validation.* and "
                              "test.* files in the data folder")
        data_settings["path"] = os.fspath(data)
    else:
        from phasefit.data.memory import in_memory_data

        tables = in_memory_data(data, validation, test, text_column=data_settings.get("text_column", "text"),
                                label_column=data_settings.get("label_column", "label"))
        data_settings["path"] = tables.spec
    settings["data"] = data_settings
    settings["seed"] = seed

    config_file = None
    base: dict[str, Any] | None = None
    if isinstance(config, RunConfig):
        base = config.to_dict()
    elif isinstance(config, dict):
        base = config
    elif config is not None:
        config_file = config
    run_config = build_config(recipe, config_file, base=base, settings=settings)
    if output is None:
        output = Path("runs") / f"{run_config.recipe}-{datetime.now():%Y%m%d-%H%M%S}"
    result = train_run(run_config, output, overwrite=overwrite, resume=resume, callbacks=callbacks, tables=tables)
    result.classifier.run = result
    return result.classifier


def recipes() -> dict[str, str]:
    """Recipe names and what each trains (the table of ``phasefit recipes``)."""
    from phasefit.recipes import RECIPE_HELP, RECIPES

    return {name: RECIPE_HELP.get(name, "") for name in RECIPES}


def select(
    data: str | os.PathLike = "builtin:snips",
    *,
    output: str | os.PathLike,
    recipes: Sequence[str] = ("auto",),
    cv: int | None = None,
    ensemble: bool = False,
    seeds: Sequence[int] | None = None,
    metric: str = "macro_f1",
    overwrite: bool = False,
    data_config: dict[str, Any] | None = None,
    **settings: Any,
) -> Any:
    """Choose a recipe for ``data`` (a path, as ``phasefit select --data`` takes) by cross-validation over its
    train + validation rows, refit the choice on all of them, and return that model (a classifier, or an ensemble
    with ``--ensemble``); ``model.selection`` holds what was chosen, the fold scores and the final test score, and
    ``output`` the runs and ``recommendation.md``. ``cv``, ``ensemble``, ``seeds``, ``metric``: as the command's
    flags; ``data_config`` and ``**settings``: as :func:`train`'s.

    Example:
        >>> model = phasefit.select("my_data/", output="runs/select")  # doctest: +SKIP
        >>> model.selection.chosen, model.predict("book a table for two")  # doctest: +SKIP
    """
    from phasefit.experiments.select import load_selection, select_recipe

    if "model" in settings and isinstance(settings["model"], (str, os.PathLike)):
        settings["model"] = {"name": str(settings["model"])}
    settings = {**settings, "data": {**(data_config or {}), "path": os.fspath(data)}}
    selection = select_recipe(list(recipes), seeds, Path(output), settings=settings, metric=metric, cv=cv,
                              ensemble=ensemble, overwrite=overwrite)
    model = load_selection(output)
    model.selection = selection
    return model
