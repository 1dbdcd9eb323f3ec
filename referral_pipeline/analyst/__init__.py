"""For analysts (product §10): the HTML report and the published read-only copy of the warehouse.
No Dagster import; the assets in ``referral_pipeline.assets.analyst`` wrap these functions."""
from .publish import PublishResult, publish_copy, published_path, report_path
from .report import ReportResult, build_sections, render_report, write_report

__all__ = ["PublishResult", "publish_copy", "published_path", "report_path", "ReportResult", "build_sections",
           "render_report", "write_report"]
