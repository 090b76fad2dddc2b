"""The HTML page of the report (:class:`string.Template`; inline CSS, no script, no network)."""

from string import Template

PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="noa-omics $version">
<title>$title</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
       max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; line-height: 1.45; background: #ffffff; }
h1 { font-size: 1.8em; border-bottom: 3px solid #8c2d19; padding-bottom: 6px; }
h2 { font-size: 1.35em; margin-top: 2.2em; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
nav ol { columns: 2; }
nav li.sub { list-style: none; margin-left: 1.2em; font-size: 0.92em; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px; }
.summary div { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; }
.summary b { display: block; font-size: 1.25em; }
.summary b.list { font-size: 0.92em; font-weight: 600; }
figure { margin: 18px 0 30px; }
figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { font-size: 0.92em; color: #57606a; margin-top: 6px; }
table { border-collapse: collapse; font-size: 0.84em; margin: 8px 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; text-align: right; vertical-align: top; }
/* wide tables fit the page: cells wrap (long words too) instead of running off the right edge */
.tablewrap table { width: 100%; table-layout: auto; }
.tablewrap td, .tablewrap th { white-space: normal; overflow-wrap: anywhere; max-width: 26em; }
table.donors td { text-align: left; }
table.donors td:last-child { min-width: 22em; }
th { background: #f6f8fa; }
td:first-child, th:first-child { text-align: left; }
.note { font-size: 0.88em; color: #57606a; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; padding: 8px 12px; border-radius: 6px; }
.tablewrap { overflow-x: auto; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: 10px; overflow-x: auto; font-size: 0.82em; }
code { font-size: 0.9em; }
</style>
</head>
<body>
<h1>$title</h1>
<p class="note">Generated $created by noa-omics $version. All figures and tables are embedded; this file
needs no network access.</p>
$warnings
$body
</body>
</html>
"""
)
