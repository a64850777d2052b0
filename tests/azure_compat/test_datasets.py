"""Azure ML v1's ``Dataset`` over local files and workspace datastores, written as Azure's
dataset docs and registration samples use it (``Dataset.Tabular.from_delimited_files``,
``register_pandas_dataframe``, ``Dataset.File.from_files``, ``register``, ``get_by_name``,
``to_pandas_dataframe``, ``take``), and ``Model.register(sample_input_dataset=,
sample_output_dataset=, resource_configuration=, datasets=)`` with Azure's read-back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlmanage_jupyter.core.dataset import Dataset, DataType, FileDataset, TabularDataset
from mlmanage_jupyter.core.datastore import DataPath, Datastore
from mlmanage_jupyter.core.errors import NotFoundError, ValidationError
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.resource_configuration import ResourceConfiguration

CSV = "age,income,city,member\n31,52000.5,Oslo,true\n45,61000.0,Bergen,false\n28,39000.25,Oslo,true\n"


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    p = tmp_path / "data" / "people.csv"
    p.parent.mkdir()
    p.write_text(CSV)
    return p


def test_from_delimited_files_reads_what_pandas_reads(csv_file: Path) -> None:
    ds = Dataset.Tabular.from_delimited_files(path=str(csv_file))
    assert isinstance(ds, TabularDataset)
    df = ds.to_pandas_dataframe()
    pd.testing.assert_frame_equal(df, pd.read_csv(csv_file))
    assert ds.take(2).to_pandas_dataframe()["age"].tolist() == [31, 45]
    assert ds.skip(1).take(1).to_pandas_dataframe()["city"].tolist() == ["Bergen"]
    assert list(ds.keep_columns(["city", "age"]).to_pandas_dataframe().columns) == ["city", "age"]
    assert "Path" in Dataset.Tabular.from_delimited_files(str(csv_file), include_path=True).to_pandas_dataframe()


def test_delimited_options_header_separator_and_column_types(tmp_path: Path) -> None:
    p = tmp_path / "t.tsv"
    p.write_text("1\t2.5\tx\n3\t4.5\ty\n")
    df = Dataset.Tabular.from_delimited_files(str(p), separator="\t", header=False).to_pandas_dataframe()
    assert list(df.columns) == ["Column1", "Column2", "Column3"]  # Azure's names without a header
    assert df["Column2"].tolist() == [2.5, 4.5]
    typed = Dataset.Tabular.from_delimited_files(
        str(p), separator="\t", header=False,
        set_column_types={"Column1": DataType.to_float(), "Column2": DataType.to_string()},
    ).to_pandas_dataframe()  # fmt: skip
    assert typed["Column1"].dtype == "float64"
    assert typed["Column2"].tolist() == ["2.5", "4.5"]
    with pytest.raises(ValidationError, match=r"column 'Column3' can't be converted to long"):
        Dataset.Tabular.from_delimited_files(str(p), separator="\t", header=False,
                                             set_column_types={"Column3": DataType.to_long()})


def test_folders_globs_and_datastore_paths(workspace: Any, tmp_path: Path) -> None:
    src = tmp_path / "weather"
    (src / "2018").mkdir(parents=True)
    (src / "2018" / "11.csv").write_text("day,temp\n1,3.5\n2,4.0\n")
    (src / "2018" / "12.csv").write_text("day,temp\n1,-1.0\n")
    datastore = workspace.get_default_datastore()
    assert datastore.name == "workspaceblobstore" and Datastore.get(workspace, "workspaceblobstore") == datastore
    datastore.upload(src_dir=str(src), target_path="weather", overwrite=True, show_progress=False)
    by_tuple = Dataset.Tabular.from_delimited_files(path=[(datastore, "weather/2018/*.csv")])
    assert by_tuple.to_pandas_dataframe()["temp"].tolist() == [3.5, 4.0, -1.0]
    by_path = Dataset.Tabular.from_delimited_files(path=DataPath(datastore, "weather/2018/12.csv"))
    assert by_path.to_pandas_dataframe()["temp"].tolist() == [-1.0]
    by_folder = Dataset.Tabular.from_delimited_files(path=str(src))
    assert len(by_folder.to_pandas_dataframe()) == 3
    with pytest.raises(NotFoundError, match=r"no datastore named 'elsewhere'.*workspaceblobstore"):
        Datastore.get(workspace, "elsewhere")


def test_register_get_by_name_and_versions(workspace: Any, csv_file: Path, tmp_path: Path) -> None:
    ds = Dataset.Tabular.from_delimited_files(path=str(csv_file))
    reg = ds.register(workspace, "people", description="survey", tags={"stage": "dev"})
    assert (reg.name, reg.version, reg.description, reg.tags) == ("people", 1, "survey", {"stage": "dev"})
    # the same definition again: the registered version, as in Azure
    assert ds.register(workspace, "people").version == 1
    other = tmp_path / "other.csv"
    other.write_text("age\n1\n")
    changed = Dataset.Tabular.from_delimited_files(path=str(other))
    with pytest.raises(ValidationError, match=r"already a dataset registered under name 'people'.*create_new_version=True"):
        changed.register(workspace, "people")
    assert changed.register(workspace, "people", create_new_version=True).version == 2
    # registering copied the local files into the workspace: the original can go
    csv_file.unlink()
    v1 = Dataset.get_by_name(workspace, "people", version=1)
    assert v1.to_pandas_dataframe()["city"].tolist() == ["Oslo", "Bergen", "Oslo"]
    assert Dataset.get_by_name(workspace, "people").version == 2
    assert Dataset.get_by_id(workspace, v1.id).to_pandas_dataframe().shape == (3, 4)
    assert sorted(Dataset.get_all(workspace)) == ["people"]
    with pytest.raises(NotFoundError, match=r"dataset 'people' has no version 7; versions: \[1, 2\]"):
        Dataset.get_by_name(workspace, "people", version=7)
    with pytest.raises(NotFoundError, match=r"no dataset named 'nobody'.*\['people'\]"):
        Dataset.get_by_name(workspace, "nobody")


def test_register_pandas_dataframe_round_trips_values_and_types(workspace: Any) -> None:
    df = pd.DataFrame({
        "n": [1, 2, 3], "x": [0.5, 1.5, -2.0], "flag": [True, False, True], "s": ["a", "007", "c"],
        "t": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
    })  # fmt: skip
    target = (workspace.get_default_datastore(), "frames")
    ds = Dataset.Tabular.register_pandas_dataframe(df, target, "frame", show_progress=False)
    assert ds.version == 1
    back = Dataset.get_by_name(workspace, "frame").to_pandas_dataframe()
    pd.testing.assert_frame_equal(back, df, check_dtype=True)
    assert Dataset.Tabular.register_pandas_dataframe(df, target, "frame", show_progress=False).version == 2
    with pytest.raises(ValidationError, match="dataframe must be a pandas DataFrame"):
        Dataset.Tabular.register_pandas_dataframe([1, 2], target, "frame")
    with pytest.raises(ValidationError, match="target must be a Datastore"):
        Dataset.Tabular.register_pandas_dataframe(df, "/tmp/x", "frame")


def test_file_dataset_paths_and_download(tmp_path: Path) -> None:
    src = tmp_path / "images"
    (src / "cats").mkdir(parents=True)
    (src / "cats" / "a.png").write_bytes(b"\x89PNG a")
    (src / "b.png").write_bytes(b"\x89PNG b")
    ds = Dataset.File.from_files(path=str(src))
    assert isinstance(ds, FileDataset)
    assert ds.to_path() == ["/b.png", "/cats/a.png"]
    assert ds.take(1).to_path() == ["/b.png"]
    out = tmp_path / "out"
    got = ds.download(target_path=str(out))
    assert sorted(Path(p).read_bytes() for p in got) == [b"\x89PNG a", b"\x89PNG b"]
    with pytest.raises(ValidationError, match="already exists: pass overwrite=True"):
        ds.download(target_path=str(out))
    assert len(ds.download(target_path=str(out), overwrite=True)) == 2


@pytest.mark.parametrize("url", [
    "https://example.com/data.csv",
    "wasbs://container@account.blob.core.windows.net/data.csv",
    "azureml://datastores/workspaceblobstore/paths/data.csv",
])  # fmt: skip
def test_cloud_paths_answer_one_clear_error(url: str) -> None:
    with pytest.raises(ValidationError, match=r"cloud URL and can't be read here.*upload"):
        Dataset.Tabular.from_delimited_files(path=url)
    with pytest.raises(ValidationError, match=r"cloud URL"):
        Dataset.File.from_files(path=[url])


def test_bad_input_names_what_to_fix(workspace: Any, tmp_path: Path, csv_file: Path) -> None:
    with pytest.raises(ValidationError, match="path not found"):
        Dataset.Tabular.from_delimited_files(path=str(tmp_path / "missing.csv"))
    with pytest.raises(ValidationError, match="no file matches"):
        Dataset.File.from_files(path=str(tmp_path / "*.parquet"))
    with pytest.raises(ValidationError, match="leaves the datastore"):
        Dataset.File.from_files(path=(workspace.get_default_datastore(), "../../etc/passwd"))
    with pytest.raises(ValidationError, match=r"path tuple must be \(Datastore, 'path/on/datastore'\)"):
        Dataset.File.from_files(path=("workspaceblobstore", "x"))
    ds = Dataset.Tabular.from_delimited_files(path=str(csv_file))
    with pytest.raises(ValidationError, match="dataset name"):
        ds.register(workspace, "../bad")
    with pytest.raises(ValidationError, match=r"tags must be a dict\[str, str\]"):
        ds.register(workspace, "people", tags={"n": 1})
    assert Dataset.get_all(workspace) == {}


def test_model_register_with_datasets_and_resource_configuration(workspace: Any, sklearn_model: Any, csv_file: Path) -> None:
    inputs = Dataset.Tabular.from_delimited_files(path=str(csv_file))  # not registered: saved with the model
    outputs = Dataset.Tabular.register_pandas_dataframe(
        pd.DataFrame({"score": [0.1, 0.9, 0.4]}), workspace.get_default_datastore(), "scores", show_progress=False)
    training = Dataset.File.from_files(path=str(csv_file.parent))
    rc = ResourceConfiguration(cpu=1, memory_in_gb=0.5)
    model = Model.register(
        workspace, model_path=str(sklearn_model.path), model_name="people-model", properties={"owner": "me"},
        sample_input_dataset=inputs, sample_output_dataset=outputs, resource_configuration=rc,
        datasets=[("training data", training)],
    )  # fmt: skip
    again = Model(workspace, "people-model")  # read back from the workspace, as Azure's Model(ws, name)
    assert again.resource_configuration == rc
    assert again.sample_input_dataset.to_pandas_dataframe().equals(inputs.to_pandas_dataframe())
    assert again.sample_output_dataset.id == outputs.id
    assert list(again.datasets) == ["training data"]
    assert again.datasets["training data"][0].to_path() == ["/people.csv"]
    assert again.properties == {"owner": "me"}  # the bookkeeping keys stay out of the user's properties
    ser = model.serialize()
    assert ser["properties"] == {"owner": "me"}
    assert ser["resourceConfiguration"] == {"cpu": 1, "memoryInGB": 0.5, "gpu": None}
    assert ser["sampleOutputDatasetId"] == outputs.id and ser["datasets"][0]["name"] == "training data"
    plain = Model.register(workspace, str(sklearn_model.path), "plain")
    assert (plain.sample_input_dataset, plain.sample_output_dataset, plain.resource_configuration, plain.datasets) == \
        (None, None, None, {})


def test_model_register_rejects_wrong_types_and_registers_nothing(workspace: Any, sklearn_model: Any, csv_file: Path) -> None:
    files = Dataset.File.from_files(path=str(csv_file))
    cases = [
        ({"sample_input_dataset": files}, r"sample_input_dataset must be a TabularDataset"),
        ({"sample_output_dataset": pd.DataFrame({"a": [1]})}, r"sample_output_dataset must be a TabularDataset"),
        ({"resource_configuration": {"cpu": 1}}, r"resource_configuration must be a ResourceConfiguration"),
        ({"datasets": [files]}, r"datasets must be a list of \(scenario, Dataset\) tuples"),
        ({"datasets": files}, r"datasets must be a list of \(scenario, Dataset\) tuples"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValidationError, match=message):
            Model.register(workspace, str(sklearn_model.path), "typed", **kwargs)
    assert len(Model.list(workspace)) == 0


def test_azure_profiling_sample_dataset_gives_the_requests(workspace: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cells of Azure's v1 "Profile your model" page that build ``input_dataset`` (one JSON
    request per line, ``separator='\\n'``), read by ``Model.profile``'s sample loader."""
    import json

    from mlmanage_jupyter.core.profiling import load_input_dataset

    monkeypatch.chdir(tmp_path)
    input_json = {"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}
    serialized_input_json = json.dumps(input_json)
    dataset_content = "\n".join(serialized_input_json for _ in range(100))
    file_name = "sample_request_data.txt"
    Path(file_name).write_text(dataset_content)
    datastore = workspace.get_default_datastore()
    datastore.upload_files(["./" + file_name], target_path="sample_request_data", show_progress=False)
    datastore_path = [(datastore, "sample_request_data" + "/" + file_name)]
    sample_request_data = Dataset.Tabular.from_delimited_files(datastore_path, separator="\n")
    sample_request_data = sample_request_data.register(workspace=workspace, name="sample_request_data",
                                                       create_new_version=True)
    samples = load_input_dataset(sample_request_data)
    assert len(samples) == 99  # header=True (the default) takes the first line as the column name, as in Azure
    assert {json.loads(s) == input_json for s in samples} == {True}
