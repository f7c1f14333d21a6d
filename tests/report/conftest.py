"""The report tests' shared set-up."""

from __future__ import annotations

import solver_table_stub

# the registry's solver table (contract A'), or a stand-in of the contract's rows until then
solver_table_stub.install()
