"""Open a report in headless Chromium and list what rendered: images and tables.

A copy of the HTML gets a script that, once the page has loaded, records
every ``<img>`` (decoded and of non-zero width, or broken) and every
``<table>`` (its number of body rows and of non-empty cells); Chromium's
``--dump-dom`` prints the resulting DOM, from which the record is read. The
report itself is not modified.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # needed when running as root (CI containers)
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
)

_PROBE = """
<script>
window.addEventListener("load", () => {
  const images = [...document.images].map((img, i) => ({
    index: i, alt: img.alt, ok: img.complete && img.naturalWidth > 0,
    width: img.naturalWidth, height: img.naturalHeight,
  }));
  const tables = [...document.querySelectorAll("table")].map((t, i) => {
    const cells = [...t.querySelectorAll("tbody td")];
    return {
      index: i,
      caption: t.caption ? t.caption.textContent : "",
      rows: t.tBodies.length ? t.tBodies[0].rows.length : 0,
      columns: t.querySelectorAll("thead th").length,
      filled: cells.filter(c => c.textContent.trim() !== "").length,
    };
  });
  const out = document.createElement("pre");
  out.id = "sfbench-render-check";
  out.textContent = JSON.stringify({images, tables});
  document.body.appendChild(out);
});
</script>
"""


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def check_in_chromium(html_path: str | Path, chromium: str | None = None,
                      timeout: float = 120) -> dict:
    """``{"images": [...], "tables": [...]}`` as rendered by headless Chromium.

    Raises:
        FileNotFoundError: no Chromium on the PATH (or ``html_path`` missing).
        RuntimeError: Chromium failed or printed no record.
    """
    html_path = Path(html_path)
    if not html_path.is_file():
        raise FileNotFoundError(f"report not found: {html_path}")
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError(f"no Chromium found (tried {', '.join(CHROMIUM_NAMES)})")
    with tempfile.TemporaryDirectory(prefix="sfbench-chromium-") as tmp:
        page = Path(tmp) / "report.html"
        text = html_path.read_text()
        cut = text.rfind("</body>")
        page.write_text(text[:cut] + _PROBE + text[cut:] if cut >= 0 else text + _PROBE)
        proc = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
             "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=timeout,
        )
    match = re.search(r'<pre id="sfbench-render-check">(.*?)</pre>', proc.stdout, re.S)
    if proc.returncode != 0 or not match:
        raise RuntimeError(
            f"chromium exited with {proc.returncode} and no render record:\n{proc.stderr[-3000:]}"
        )
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))
