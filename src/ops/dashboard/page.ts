/** The dashboard's shell: no figures in it, they come over the stream once the token is accepted. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>noray dashboard</title>
<link rel="stylesheet" href="dashboard/uPlot.min.css">
<link rel="stylesheet" href="dashboard/style.css">
</head>
<body>
<header>
  <h1>noray</h1>
  <span id="status" class="badge">connecting</span>
  <span id="node" class="muted"></span>
  <span id="updated" class="muted"></span>
  <span class="spacer"></span>
  <button id="logout" type="button" hidden>Log out</button>
</header>
<div id="banner" class="banner" role="alert" hidden></div>
<section id="login-panel" class="card login" hidden>
  <h2>Ops token</h2>
  <p>This server requires its <code>NORAY_OPS_TOKEN</code>.</p>
  <form id="login">
    <input id="token" type="password" autocomplete="current-password" placeholder="NORAY_OPS_TOKEN" required>
    <button type="submit">Open</button>
  </form>
  <p id="login-error" class="error" role="alert"></p>
</section>
<main id="main">
  <div id="cards" class="grid"></div>
  <section class="card wide"><h2>Relayed traffic</h2><div id="chart"></div></section>
  <div id="counts" class="grid"></div>
  <section id="nodes" class="card wide" hidden></section>
  <div class="toolbar">
    <input id="search" type="search" placeholder="Search hosts, lobbies, rooms, clients" maxlength="100">
    <span id="notice" class="muted" role="status"></span>
  </div>
  <div id="tables"></div>
</main>
<script src="dashboard/uPlot.iife.min.js"></script>
<script type="module" src="dashboard/app.js"></script>
</body>
</html>
`;

export const DASHBOARD_CSS = `:root { color-scheme: light dark; --fg: #111827; --bg: #f3f4f6; --card: #fff; --muted: #6b7280; --line: #e5e7eb; --up: #15803d; --down: #b91c1c; }
@media (prefers-color-scheme: dark) { :root { --fg: #e5e7eb; --bg: #111827; --card: #1f2937; --muted: #9ca3af; --line: #374151; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: .75rem; align-items: center; padding: .75rem 1rem; background: var(--card); border-bottom: 1px solid var(--line); }
header h1 { margin: 0; font-size: 1.2rem; }
.spacer { flex: 1; }
.muted { color: var(--muted); }
.badge { padding: .1rem .5rem; border-radius: 999px; background: var(--line); font-weight: 600; }
.badge.up { background: var(--up); color: #fff; }
.badge.down { background: var(--down); color: #fff; }
.banner { margin: 1rem; padding: .75rem 1rem; border-radius: .5rem; background: var(--down); color: #fff; }
body.stale main { opacity: .45; filter: grayscale(1); }
main { padding: 1rem; display: flex; flex-direction: column; gap: 1rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: .75rem 1rem; }
.card h2 { margin: 0 0 .5rem; font-size: 1rem; }
.login { max-width: 420px; margin: 3rem auto; }
.login form { display: flex; gap: .5rem; }
.login input { flex: 1; }
.error { color: var(--down); }
dl { display: grid; grid-template-columns: 1fr auto; gap: .15rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.self td:first-child { font-weight: 600; }
.empty { color: var(--muted); margin: 0; }
.toolbar { display: flex; gap: 1rem; align-items: center; }
.toolbar input { flex: 0 1 420px; padding: .4rem .6rem; }
#tables { display: flex; flex-direction: column; gap: 1rem; }
button { cursor: pointer; }
button.danger { color: var(--down); }
`;
