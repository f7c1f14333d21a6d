"""A real path model (the oracle) that logs its calls, shared by the solver tests."""

from __future__ import annotations

import torch


class CallLog:
    """Wraps a path model and logs each call: the batch size (``calls``), the largest
    time of the call (``times``) and every time it was asked for (``all_times``).

    An independent record to hold CountingModel and generate() against, and to see
    where on the time axis a solver queries the model.
    """

    def __init__(self, model):
        self.model, self.calls, self.times, self.all_times = model, [], [], []
        self.sample_shape, self.one_step, self.has_score = (
            model.sample_shape, model.one_step, model.has_score)

    @property
    def schedule(self):
        return self.model.schedule

    def predict(self, x, t):
        t_all = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        self.calls.append(x.shape[0])
        self.times.append(float(t_all.max()))
        self.all_times.extend(t_all.tolist())
        return self.model.predict(x, t)
