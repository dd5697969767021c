"""The pull-request report (``mwaa-iac report``): what a change to an environment means.

``build_report(workspace, ReportOptions(...))`` gathers a :class:`Report`; ``render_markdown``,
``render_json`` and ``render_text`` present its document, which ``data/report.schema.json`` describes.
"""

from mwaa_iac.report.build import Report, ReportOptions, build_report
from mwaa_iac.report.render import render_json, render_markdown, render_text

__all__ = ["Report", "ReportOptions", "build_report", "render_json", "render_markdown", "render_text"]
