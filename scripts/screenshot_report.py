"""Check that the HTML report renders: every embedded image decodes and loads in Chromium.

Usage:
    python scripts/screenshot_report.py data/08_reporting/report.html/<version>/report.html \
        --screenshot report.png [--chromium /usr/bin/chromium] [--json check.json] [--no-browser]

Checks:
1. every ``<img src="data:image/png;base64,...">`` decodes as an image (Pillow);
2. (browser) headless Chromium loads a copy of the page with a small script
   that marks each image ``data-rendered="true"`` when ``naturalWidth > 0``;
   the dumped DOM must mark every image;
3. (browser) at ``--layout-width`` pixels (default 1300) the page has no
   horizontal overflow: the document is no wider than the window (wide
   tables scroll inside their own box instead);
4. (browser) a full-page screenshot is written and is not blank.

Exit status 0 when all checks pass, 1 otherwise; a summary is printed (and
written as JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageStat, UnidentifiedImageError

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
]
_IMG = re.compile(r'<img\b[^>]*\bsrc="data:image/(?:png|jpeg);base64,([A-Za-z0-9+/=]+)"', re.IGNORECASE)
_MARKER = """<script>
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img');
  for (var i = 0; i < imgs.length; i++) {
    imgs[i].setAttribute('data-rendered', String(imgs[i].complete && imgs[i].naturalWidth > 0));
  }
  document.body.setAttribute('data-checked', String(imgs.length));
  var doc = document.documentElement;
  document.body.setAttribute('data-scroll-width', String(doc.scrollWidth));
  document.body.setAttribute('data-client-width', String(doc.clientWidth));
});
</script>"""


def decode_images(html: str) -> list[dict]:
    """Size (or error) of every base64 image embedded in ``html``."""
    out = []
    for i, b64 in enumerate(_IMG.findall(html)):
        try:
            img = Image.open(io.BytesIO(base64.b64decode(b64, validate=True)))
            img.load()
            out.append({"index": i, "ok": img.size[0] > 0 and img.size[1] > 0, "size": list(img.size)})
        except (binascii.Error, UnidentifiedImageError, OSError) as exc:
            out.append({"index": i, "ok": False, "error": str(exc)})
    return out


def _chromium(binary: str, user_dir: str, *args: str, timeout: int) -> subprocess.CompletedProcess:
    cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_dir}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def browser_check(html_path: Path, binary: str, screenshot: Path, window: str, timeout: int,
                  layout_width: int = 1300) -> dict:
    """Load the page in headless Chromium: images rendered (DOM marks), no horizontal overflow, a non-blank screenshot."""
    with tempfile.TemporaryDirectory() as tmp:
        marked = Path(tmp) / "marked.html"
        text = html_path.read_text(encoding="utf-8")
        marked.write_text(text.replace("</body>", _MARKER + "</body>", 1), encoding="utf-8")
        dom = _chromium(binary, str(Path(tmp) / "profile-dom"), f"--window-size={layout_width},900",
                        "--virtual-time-budget=10000", "--dump-dom", marked.as_uri(), timeout=timeout)
        rendered = len(re.findall(r'data-rendered="true"', dom.stdout))
        not_rendered = len(re.findall(r'data-rendered="false"', dom.stdout))
        checked = re.search(r'data-checked="(\d+)"', dom.stdout)
        scroll = re.search(r'data-scroll-width="(\d+)"', dom.stdout)
        client = re.search(r'data-client-width="(\d+)"', dom.stdout)
        shot = _chromium(binary, str(Path(tmp) / "profile-shot"), f"--screenshot={screenshot}",
                         f"--window-size={window}", "--virtual-time-budget=10000", html_path.resolve().as_uri(),
                         timeout=timeout)
    result = {"dom_returncode": dom.returncode, "images_in_dom": int(checked[1]) if checked else None,
              "rendered": rendered, "not_rendered": not_rendered, "screenshot": str(screenshot),
              "screenshot_returncode": shot.returncode, "layout_width": layout_width,
              "scroll_width": int(scroll[1]) if scroll else None, "client_width": int(client[1]) if client else None}
    # overflow unknown (no marks) counts as overflow: the check must be able to fail
    result["horizontal_overflow"] = not (scroll and client) or int(scroll[1]) > int(client[1])
    if screenshot.exists():
        img = Image.open(screenshot).convert("L")
        stat = ImageStat.Stat(img)
        result["screenshot_size"] = list(img.size)
        result["screenshot_stddev"] = round(stat.stddev[0], 2)
        result["screenshot_blank"] = stat.stddev[0] < 1.0
    else:
        result["screenshot_blank"] = True
        result["stderr_tail"] = (shot.stderr or dom.stderr)[-2000:]
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("--screenshot", type=Path, default=Path("report_screenshot.png"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--window-size", default="1280,4000")
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--layout-width", type=int, default=1300, help="window width (px) of the overflow check")
    ap.add_argument("--no-browser", action="store_true", help="only decode the embedded images")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    html = args.html.read_text(encoding="utf-8")
    images = decode_images(html)
    summary: dict = {"html": str(args.html), "images": len(images), "images_decoded": sum(i["ok"] for i in images),
                     "image_details": images}
    ok = bool(images) and all(i["ok"] for i in images)
    if not args.no_browser:
        binary = shutil.which(args.chromium) or (args.chromium if Path(args.chromium).exists() else None)
        if binary is None:
            print(f"chromium not found at {args.chromium}", file=sys.stderr)
            return 2
        b = browser_check(args.html, binary, args.screenshot, args.window_size, args.timeout, args.layout_width)
        summary["browser"] = b
        ok = (ok and b["rendered"] == len(images) and b["not_rendered"] == 0 and not b["screenshot_blank"]
              and not b["horizontal_overflow"])
    summary["ok"] = ok
    print(f"{'check':<22}{'value':>10}")
    print(f"{'images embedded':<22}{len(images):>10}")
    print(f"{'images decoded':<22}{summary['images_decoded']:>10}")
    if "browser" in summary:
        b = summary["browser"]
        print(f"{'images rendered':<22}{b['rendered']:>10}")
        print(f"{'screenshot stddev':<22}{b.get('screenshot_stddev', 'n/a'):>10}")
        print(f"{'page width / window':<22}{str(b['scroll_width']) + '/' + str(b['client_width']):>10}")
    print(f"{'ok':<22}{str(ok):>10}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
