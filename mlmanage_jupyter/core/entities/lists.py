"""``ResourceList``: the one base of ``ModelList``, ``ImageList`` and ``ServiceList``
(docker-py's Collection idea): a plain ``list`` that renders as a table in notebooks and
converts to a pandas DataFrame with fixed columns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")


class ResourceList(list[T]):
    """A list of resources; subclasses set ``columns`` and ``empty_text`` and define
    :meth:`row` (one dict per item, keys = ``columns``)."""

    columns: ClassVar[list[str]] = []
    empty_text: ClassVar[str] = "nothing"

    def row(self, item: T) -> dict[str, Any]:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def to_dataframe(self) -> pd.DataFrame:
        """One row per item, columns ``self.columns`` (also when empty)."""
        import pandas as pd

        return pd.DataFrame([self.row(i) for i in self], columns=self.columns)

    def html_frame(self, df: pd.DataFrame) -> str:
        """The HTML table of a non-empty list (subclasses may reshape ``df`` first)."""
        return df.to_html(index=False)

    def _repr_html_(self) -> str:
        return self.html_frame(self.to_dataframe()) if self else f"<i>{self.empty_text}</i>"


def format_bytes(n: int) -> str:
    """Human-readable size in binary units (B, KiB, MiB, GiB, TiB)."""
    f = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if f < 1024 or unit == "TiB":
            return f"{f:.0f} {unit}" if unit == "B" else f"{f:.1f} {unit}"
        f /= 1024
    return f"{n} B"
