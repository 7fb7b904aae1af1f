"""Data-only encoding of a paper-trading allocator (JSON; never pickle, never code).

``drb paper`` saves its allocator (every estimator's state: return history, risk model, regime
classifiers, Markov counts, budgets, triggers), the pending decision and the rebalance log after
each bar. :func:`encode` turns that object graph into JSON-compatible data and :func:`decode` turns
it back, so that a resumed run continues bit-identically. Unlike pickle, decoding calls no function
named by the data: it builds only

- JSON scalars, lists, tuples, sets, deques and dicts;
- numpy arrays and scalars of numeric, boolean, datetime or fixed-width text dtypes (raw bytes,
  base64); ``object`` arrays element by element, each element one of the things listed here;
- pandas ``Timestamp`` (and ``NaT``), ``Index`` / ``DatetimeIndex`` / ``RangeIndex``, ``Series`` and ``DataFrame``;
- instances of the project's own classes (modules ``strategies.*`` and ``indicators.*``), created
  without running ``__init__`` and given their saved attributes.

Anything else (a function, a class from another module, an unknown tag) is a :class:`TypeError`
when saving and a :class:`drb.errors.StateError` when loading. Shared references (one object
reachable twice) are kept shared.
"""

from __future__ import annotations

import base64
import collections
import enum
import importlib
import math
from typing import Any

import numpy as np
import pandas as pd

from drb.errors import StateError

__all__ = ["ALLOWED_MODULES", "encode", "decode"]

#: Packages whose classes may be rebuilt from a state file.
ALLOWED_MODULES: tuple[str, ...] = ("strategies.", "indicators.")
_ARRAY_KINDS = "biufcmMUS"


def _allowed(module: str) -> bool:
    return any(module.startswith(p) for p in ALLOWED_MODULES)


# ================================================================================== encode
class _Encoder:
    def __init__(self) -> None:
        self.memo: dict[int, int] = {}
        self.keep: list[Any] = []  # objects memoized by id stay alive while encoding

    def _shared(self, obj: Any) -> dict[str, Any] | None:
        key = id(obj)
        if key in self.memo:
            return {"__ref__": self.memo[key]}
        self.memo[key] = len(self.memo)
        self.keep.append(obj)
        return None

    def enc(self, obj: Any) -> Any:
        t = type(obj)
        if obj is None or t in (bool, int, str):
            return obj
        if t is float:
            return obj if math.isfinite(obj) else {"__f__": repr(obj)}
        ref = self._shared(obj)
        if ref is not None:
            return ref
        out = self._container(obj)
        if out is None:
            out = self._numeric(obj)
        if out is None:
            out = self._instance(obj)
        return {**out, "id": self.memo[id(obj)]}

    def _container(self, obj: Any) -> dict[str, Any] | None:
        if type(obj) is list:
            return {"__list__": [self.enc(v) for v in obj]}
        if type(obj) is tuple:
            return {"__tuple__": [self.enc(v) for v in obj]}
        if type(obj) in (set, frozenset):
            items = sorted(obj, key=repr)
            return {"__set__": [self.enc(v) for v in items], "frozen": type(obj) is frozenset}
        if type(obj) is collections.deque:
            return {"__deque__": [self.enc(v) for v in obj], "maxlen": obj.maxlen}
        if type(obj) in (dict, collections.OrderedDict):
            return {"__map__": [[self.enc(k), self.enc(v)] for k, v in obj.items()]}
        return None

    def _numeric(self, obj: Any) -> dict[str, Any] | None:
        if isinstance(obj, np.ndarray) and type(obj) is np.ndarray:
            if obj.dtype == object:  # element by element, each one data itself
                return {"__ndo__": list(obj.shape), "items": [self.enc(v) for v in obj.ravel().tolist()]}
            if obj.dtype.kind not in _ARRAY_KINDS:
                raise TypeError(f"array of dtype {obj.dtype} cannot be saved as data")
            a = np.ascontiguousarray(obj)
            return {"__nd__": a.dtype.str, "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode()}
        if isinstance(obj, np.generic):
            a = np.asarray(obj)
            if a.dtype.kind not in _ARRAY_KINDS:
                raise TypeError(f"numpy scalar of dtype {a.dtype} cannot be saved as data")
            return {"__np__": a.dtype.str, "b64": base64.b64encode(a.tobytes()).decode()}
        if obj is pd.NaT:
            return {"__nat__": True}
        if type(obj) is pd.Timestamp:
            return {"__ts__": int(obj.value), "unit": obj.unit, "tz": None if obj.tz is None else str(obj.tz)}
        if isinstance(obj, pd.Index):
            return {"__index__": self._index(obj)}
        if type(obj) is pd.Series:
            return {"__series__": self.enc(obj.to_numpy()), "index": self._index(obj.index), "name": self.enc(obj.name)}
        if type(obj) is pd.DataFrame:
            if not obj.columns.is_unique:
                raise TypeError("a DataFrame with duplicate columns cannot be saved as data")
            cols = [self.enc(obj[c].to_numpy()) for c in obj.columns]
            return {"__frame__": cols, "columns": self._index(obj.columns), "index": self._index(obj.index)}
        return None

    def _index(self, idx: pd.Index) -> dict[str, Any]:
        if isinstance(idx, pd.MultiIndex):
            raise TypeError("a MultiIndex cannot be saved as data")
        if type(idx) is pd.RangeIndex:
            return {"range": [idx.start, idx.stop, idx.step], "name": self.enc(idx.name)}
        if isinstance(idx, pd.DatetimeIndex):
            tz = None if idx.tz is None else str(idx.tz)
            values = idx.tz_convert(None).to_numpy() if tz else idx.to_numpy()
            return {"datetime": self.enc(values), "tz": tz, "freq": idx.freqstr, "name": self.enc(idx.name)}
        values = idx.to_numpy()
        if values.dtype == object:
            return {"items": [self.enc(v) for v in values], "name": self.enc(idx.name)}
        return {"values": self.enc(values), "name": self.enc(idx.name)}

    def _instance(self, obj: Any) -> dict[str, Any]:
        cls = type(obj)
        name = f"{cls.__module__}:{cls.__qualname__}"
        if not _allowed(cls.__module__) or "<locals>" in cls.__qualname__:
            raise TypeError(f"{name} is not a project class: it cannot be saved as data")
        if isinstance(obj, enum.Enum):
            return {"__enum__": name, "value": self.enc(obj.value)}
        attrs: dict[str, Any] = dict(getattr(obj, "__dict__", {}))
        for slot_cls in cls.__mro__:
            for s in getattr(slot_cls, "__slots__", ()):
                if s not in ("__dict__", "__weakref__") and hasattr(obj, s):
                    attrs[s] = getattr(obj, s)
        return {"__obj__": name, "attrs": [[k, self.enc(v)] for k, v in attrs.items()]}


def encode(obj: Any) -> Any:
    """JSON-compatible data for ``obj`` (see the module docstring for what is accepted).

    Raises
    ------
    TypeError
        Something in the object graph cannot be saved as data (a function, a foreign class...).
    """
    return _Encoder().enc(obj)


# ================================================================================== decode
class _Decoder:
    def __init__(self, where: str) -> None:
        self.where = where
        self.objs: dict[int, Any] = {}

    def fail(self, what: str) -> StateError:
        return StateError(f"{self.where}: {what}; refusing to trade (--reset starts afresh)")

    def dec(self, data: Any) -> Any:
        if data is None or type(data) in (bool, int, str, float):
            return data
        if type(data) is not dict:
            raise self.fail(f"unexpected {type(data).__name__} in the allocator state")
        if "__ref__" in data:
            key = data["__ref__"]
            if key not in self.objs:
                raise self.fail(f"reference to unknown object {key!r} in the allocator state")
            return self.objs[key]
        if "__f__" in data:
            if data["__f__"] not in ("nan", "inf", "-inf"):
                raise self.fail("bad float in the allocator state")
            return float(data["__f__"])
        tag = next((k for k in data if k.startswith("__")), None)
        handler = _DECODERS.get(tag)
        if handler is None:
            raise self.fail(f"unknown entry {tag!r} in the allocator state")
        return handler(self, data)

    def _keep(self, data: dict, obj: Any) -> Any:
        self.objs[data.get("id")] = obj
        return obj

    def _list(self, data: dict) -> Any:
        out = self._keep(data, [])
        out.extend(self.dec(v) for v in data["__list__"])
        return out

    def _tuple(self, data: dict) -> Any:
        return self._keep(data, tuple(self.dec(v) for v in data["__tuple__"]))

    def _set(self, data: dict) -> Any:
        items = [self.dec(v) for v in data["__set__"]]
        return self._keep(data, frozenset(items) if data.get("frozen") else set(items))

    def _deque(self, data: dict) -> Any:
        return self._keep(data, collections.deque((self.dec(v) for v in data["__deque__"]), maxlen=data.get("maxlen")))

    def _map(self, data: dict) -> Any:
        out = self._keep(data, {})
        for k, v in data["__map__"]:
            out[self.dec(k)] = self.dec(v)
        return out

    def _dtype(self, text: Any) -> np.dtype:
        try:
            dt = np.dtype(str(text))
        except TypeError:
            raise self.fail(f"bad dtype {text!r} in the allocator state") from None
        if dt.kind not in _ARRAY_KINDS:
            raise self.fail(f"dtype {dt} is not allowed in the allocator state")
        return dt

    def _nd(self, data: dict) -> Any:
        dt = self._dtype(data["__nd__"])
        raw = base64.b64decode(data["b64"], validate=True)
        arr = np.frombuffer(raw, dtype=dt).reshape([int(s) for s in data["shape"]]).copy()
        return self._keep(data, arr)

    def _ndo(self, data: dict) -> Any:
        shape = [int(x) for x in data["__ndo__"]]
        arr = self._keep(data, np.empty(shape, dtype=object))
        flat = [self.dec(v) for v in data["items"]]
        if len(flat) != arr.size:
            raise self.fail("object array of the wrong size in the allocator state")
        for i, v in enumerate(flat):
            arr.flat[i] = v
        return arr

    def _np(self, data: dict) -> Any:
        dt = self._dtype(data["__np__"])
        return self._keep(data, np.frombuffer(base64.b64decode(data["b64"], validate=True), dtype=dt)[0])

    def _ts(self, data: dict) -> Any:
        ts = pd.Timestamp(int(data["__ts__"]), tz="UTC" if data.get("tz") else None)
        if data.get("tz"):
            ts = ts.tz_convert(str(data["tz"]))
        return self._keep(data, ts.as_unit(str(data.get("unit") or "ns")))

    def _index(self, spec: dict) -> pd.Index:
        name = self.dec(spec.get("name"))
        if "range" in spec:
            start, stop, step = (int(x) for x in spec["range"])
            return pd.RangeIndex(start, stop, step, name=name)
        if "datetime" in spec:
            idx = pd.DatetimeIndex(self.dec(spec["datetime"]), name=name, freq=spec.get("freq"))
            return idx.tz_localize("UTC").tz_convert(spec["tz"]) if spec.get("tz") else idx
        if "items" in spec:
            return pd.Index([self.dec(v) for v in spec["items"]], name=name)
        return pd.Index(self.dec(spec["values"]), name=name)

    def _index_obj(self, data: dict) -> Any:
        return self._keep(data, self._index(data["__index__"]))

    def _series(self, data: dict) -> Any:
        s = pd.Series(self.dec(data["__series__"]), index=self._index(data["index"]), name=self.dec(data.get("name")))
        return self._keep(data, s)

    def _frame(self, data: dict) -> Any:
        columns = self._index(data["columns"])
        cols = [self.dec(c) for c in data["__frame__"]]
        frame = pd.DataFrame(dict(zip(range(len(cols)), cols)), index=self._index(data["index"]))
        frame.columns = columns
        return self._keep(data, frame)

    def _class(self, name: Any) -> type:
        module, _, qual = str(name).partition(":")
        if not _allowed(module) or not qual or "<" in qual:
            raise self.fail(f"class {name!r} is not a project class")
        try:
            obj: Any = importlib.import_module(module)
            for part in qual.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            raise self.fail(f"unknown class {name!r}") from None
        # A class may be reached through a deprecated alias module (a state saved before a class
        # moved); what counts is that the class itself is one of the project's.
        if not isinstance(obj, type) or not _allowed(obj.__module__):
            raise self.fail(f"{name!r} is not a project class")
        return obj

    def _enum(self, data: dict) -> Any:
        cls = self._class(data["__enum__"])
        if not issubclass(cls, enum.Enum):
            raise self.fail(f"{data['__enum__']!r} is not an enumeration")
        return self._keep(data, cls(self.dec(data["value"])))

    def _obj(self, data: dict) -> Any:
        cls = self._class(data["__obj__"])
        if issubclass(cls, BaseException) or cls.__new__ is not object.__new__:
            raise self.fail(f"{data['__obj__']!r} cannot be rebuilt from data")
        obj = self._keep(data, object.__new__(cls))
        for key, value in data["attrs"]:
            if not isinstance(key, str) or (key.startswith("__") and key.endswith("__")):
                raise self.fail(f"bad attribute {key!r} of {data['__obj__']}")
            object.__setattr__(obj, key, self.dec(value))
        return obj


_DECODERS = {
    "__list__": _Decoder._list,
    "__tuple__": _Decoder._tuple,
    "__set__": _Decoder._set,
    "__deque__": _Decoder._deque,
    "__map__": _Decoder._map,
    "__nd__": _Decoder._nd,
    "__ndo__": _Decoder._ndo,
    "__np__": _Decoder._np,
    "__ts__": _Decoder._ts,
    "__nat__": lambda self, data: self._keep(data, pd.NaT),
    "__index__": _Decoder._index_obj,
    "__series__": _Decoder._series,
    "__frame__": _Decoder._frame,
    "__obj__": _Decoder._obj,
    "__enum__": _Decoder._enum,
}


def decode(data: Any, where: str = "allocator state") -> Any:
    """Rebuild what :func:`encode` saved.

    Parameters
    ----------
    data : JSON-compatible data
        Output of :func:`encode` (after a JSON round trip).
    where : str
        File name for the error messages.

    Raises
    ------
    StateError
        The data holds anything :func:`encode` does not write (a foreign class, an unknown tag, a
        disallowed dtype) or is malformed; one line, naming ``where``.
    """
    try:
        return _Decoder(where).dec(data)
    except StateError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise StateError(f"{where}: malformed allocator state ({type(exc).__name__}); refusing to trade (--reset starts afresh)") from None
