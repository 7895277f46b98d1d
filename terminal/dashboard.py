"""The shift dashboard (``/dashboard``): patients per hour, online vs offline answers and the
result-code mix, drawn server-side as inline SVG — no script, no library, no CDN. Counts only:
no names or numbers ever reach this page."""

from __future__ import annotations

from html import escape
from typing import Any

COLORS = {"registry": "#1d5a8a", "cache": "#9a6700", "none": "#b3261e",
          "eligible": "#0b7a34", "not_eligible": "#b3261e", "needs_review": "#c98f00"}
SOURCE_VI = {"registry": "Cổng BHXH", "cache": "Ngoại tuyến", "none": "Không có dữ liệu"}
STATUS_VI = {"eligible": "Đủ điều kiện", "not_eligible": "Không đủ điều kiện",
             "needs_review": "Cần kiểm tra"}


def _bars(per_hour: dict[str, int]) -> str:
    hours = [f"{h:02d}:00" for h in range(6, 21)]
    for h in per_hour:
        if h not in hours:
            hours.append(h)
    hours.sort()
    top = max([1, *per_hour.values()])
    w, height, pad = 36, 180, 24
    parts = [f'<svg class="chart" viewBox="0 0 {len(hours) * w + pad} {height + 56}" '
             f'role="img" aria-label="Số người bệnh theo giờ">']
    for i, hour in enumerate(hours):
        n = per_hour.get(hour, 0)
        bh = round(height * n / top)
        x = pad + i * w
        parts.append(f'<rect x="{x}" y="{height - bh + 20}" width="{w - 8}" height="{bh}" '
                     f'fill="#1d5a8a"><title>{hour}: {n}</title></rect>')
        if n:
            parts.append(f'<text x="{x + (w - 8) / 2}" y="{height - bh + 14}" '
                         f'text-anchor="middle" font-size="12">{n}</text>')
        parts.append(f'<text x="{x + (w - 8) / 2}" y="{height + 38}" text-anchor="middle" '
                     f'font-size="11">{hour[:2]}h</text>')
    parts.append("</svg>")
    return "".join(parts)


def _stacked(counts: dict[str, int], names: dict[str, str]) -> str:
    total = sum(counts.values()) or 1
    x = 0.0
    parts = ['<svg class="stack" viewBox="0 0 600 40" role="img">']
    legend = []
    for key, label in names.items():
        n = counts.get(key, 0)
        width = 600 * n / total
        if n:
            parts.append(f'<rect x="{x:.1f}" y="0" width="{width:.1f}" height="40" '
                         f'fill="{COLORS[key]}"><title>{escape(label)}: {n}</title></rect>')
        x += width
        legend.append(f'<li><span class="swatch" data-key="{key}"></span>{escape(label)}: '
                      f"<b>{n}</b></li>")
    parts.append("</svg>")
    return "".join(parts) + '<ul class="legend">' + "".join(legend) + "</ul>"


def render(stats: dict[str, Any], facility: str) -> str:
    codes = "".join(f"<tr><td>{escape(str(code))}</td><td>{n}</td></tr>"
                    for code, n in stats["registry_codes"].items())
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta http-equiv="refresh" content="60">
<title>Tiếp Đón — ca trực</title><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><header><h1>Ca trực · {escape(facility)}</h1>
<p>Tổng: <b>{stats["total"]}</b> lượt</p></header>
<main>
<section><h2>Người bệnh theo giờ</h2>{_bars(stats["per_hour"])}</section>
<section><h2>Nguồn trả lời</h2>{_stacked(stats["sources"], SOURCE_VI)}</section>
<section><h2>Kết quả</h2>{_stacked(stats["statuses"], STATUS_VI)}</section>
<section><h2>Mã kết quả cổng BHXH</h2>
<table><tr><th>maKetQua</th><th>Số lượt</th></tr>{codes}</table></section>
</main></body></html>"""
