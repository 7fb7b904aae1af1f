"""Deprecated alias of :mod:`runners.report.time_risk`, kept for one release."""

from runners.report.time_risk import *  # noqa: F403
from runners.report.time_risk import (  # noqa: F401
    __all__,  # noqa: F401
    main,
)

if __name__ == "__main__":
    raise SystemExit(main())
