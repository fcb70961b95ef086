"""The notebooks' face: what a reader sees and what a run leaves behind.

* :mod:`.results`: claims and checks recorded by each notebook; :mod:`.plan`: ``notebooks/PLAN.md``, the fixed plan
  every claim is measured against; :mod:`.power`: the task counts it chose; :mod:`.departures`: the paper's settings
  next to the run's;
* :mod:`.plotting`, :mod:`.diagrams`, :mod:`.gallery`, :mod:`.tables`: figures, pictures and Markdown tables;
* :mod:`.panels`: ipywidgets panels;
* :mod:`.runner`, :mod:`.report`, :mod:`.site`, :mod:`.pages`, :mod:`.claims_table`: ``make run``, its report, its
  browsable site and the README's claims table; :mod:`.lab`: ``make lab``.

Plotly and ipywidgets load only with the modules that draw.
"""

from l2l_helpers.notebook.results import claim, record, report_claims

__all__ = ["claim", "record", "report_claims"]
