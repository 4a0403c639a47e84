/// The operators' `/status` page: the queue at a glance, redrawn in place every two seconds from
/// `/status.json` by a small inline script (no framework, nothing fetched but that JSON). Every
/// string from the database is set as text, never as HTML. For whoever watches the page (and the
/// tests), `body[data-refreshes]` counts the redraws and each running job's row keeps the progress
/// values it showed in `data-progress-history`.
public enum StatusPage {
    public static let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>media-worker status</title>
        <style>
        body{font:14px system-ui,sans-serif;margin:0;background:#f4f4f6;color:#222}
        header{background:#1d2633;color:#fff;padding:12px 24px;display:flex;justify-content:space-between;align-items:baseline}
        h1{margin:0;font-size:20px}h2{font-size:15px;margin:16px 0 6px}main{padding:0 24px 24px}
        .tiles{display:flex;gap:12px;margin-top:16px}.tile{background:#fff;border-radius:8px;padding:10px 16px;min-width:110px;box-shadow:0 1px 3px #0002}
        .tile b{display:block;font-size:22px}.tile span{color:#666}
        table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 3px #0002}
        th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee}th{background:#fafafa}
        .bar{background:#e5e7eb;border-radius:4px;height:12px;width:160px;overflow:hidden}.bar div{background:#2f80ed;height:100%}
        .spark{display:flex;gap:4px;align-items:flex-end;height:60px;background:#fff;padding:8px;width:max-content;box-shadow:0 1px 3px #0002}
        .spark div{width:24px;background:#27ae60}.spark div.failed{background:#c0392b}
        .error{color:#c0392b}.muted{color:#888}
        .paused{background:#fff4d6;border:1px solid #e0b84c;border-radius:8px;padding:8px 14px;margin-top:16px}
        </style></head>
        <body data-refreshes="0">
        <header><h1>media-worker status</h1><span id="at" class="muted">loading…</span></header>
        <main>
        <div id="paused"></div>
        <div class="tiles" id="counts"></div>
        <h2>Running</h2><table id="running"><thead><tr><th>job</th><th>file</th><th>type</th><th>profile</th>
        <th>progress</th><th>host</th><th>lane</th><th>attempt</th><th>age</th></tr></thead><tbody></tbody></table>
        <h2>Running jobs per uploader</h2><table id="uploaders"><thead><tr><th>uploader (userId)</th><th>running</th>
        <th>share</th></tr></thead><tbody></tbody></table>
        <h2>Finished in the last hour (10-minute windows: completed, failed)</h2><div class="spark" id="throughput"></div>
        <h2>Last failures</h2><table id="failures"><thead><tr><th>job</th><th>file</th><th>type</th><th>when</th>
        <th>error</th></tr></thead><tbody></tbody></table>
        <h2>Workers</h2><table id="workers"><thead><tr><th>host</th><th>pid</th><th>running</th><th>last seen</th>
        </tr></thead><tbody></tbody></table>
        </main>
        <script>
        const history = {};
        function cell(row, text) { const td = row.insertCell(); td.textContent = text; return td; }
        function seconds(value) { return value < 90 ? Math.round(value) + ' s' : Math.round(value / 60) + ' min'; }
        function fill(id, items, draw) {
          const body = document.querySelector('#' + id + ' tbody');
          body.replaceChildren();
          for (const item of items) draw(body.insertRow(), item);
          if (!items.length) { const row = body.insertRow(); const td = cell(row, 'none'); td.colSpan = 9; td.className = 'muted'; }
        }
        function draw(status) {
          document.getElementById('at').textContent = 'as of ' + status.at;
          const paused = document.getElementById('paused');
          paused.replaceChildren();
          for (const type of status.paused || []) {
            const line = document.createElement('div'); line.className = 'paused';
            line.textContent = type.processingType + ' paused since ' + type.since + (type.reason ? ': ' + type.reason : '')
              + ' (first looks go on; the long pass waits for `media-worker resume ' + type.processingType + '`)';
            paused.append(line);
          }
          const counts = document.getElementById('counts');
          counts.replaceChildren();
          for (const name of ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED']) {
            const tile = document.createElement('div'); tile.className = 'tile';
            const number = document.createElement('b'); number.textContent = status.counts[name] || 0;
            const label = document.createElement('span');
            label.textContent = name.toLowerCase() + (['PENDING', 'PROCESSING'].includes(name) ? '' : ' (1 h)');
            tile.append(number, label); counts.append(tile);
          }
          fill('running', status.running, (row, job) => {
            (history[job.id] = history[job.id] || []).push(job.progress);
            row.dataset.job = job.id; row.dataset.progressHistory = history[job.id].join(',');
            cell(row, job.id); cell(row, job.file); cell(row, job.type); cell(row, job.profile);
            const bar = document.createElement('div'); bar.className = 'bar';
            const done = document.createElement('div'); done.style.width = job.progress + '%'; bar.append(done);
            const td = cell(row, ''); td.append(bar, ' ' + job.progress + ' %');
            if (job.leftSeconds != null) {
              const left = document.createElement('span'); left.className = 'left';
              left.textContent = job.leftSeconds < 90 ? 'about ' + Math.max(1, Math.ceil(job.leftSeconds)) + ' s left'
                : 'about ' + Math.round(job.leftSeconds / 60) + ' min left';
              td.append(' · ', left);
            }
            cell(row, job.host ? job.host + ':' + job.pid : '?'); cell(row, job.lane || '?'); cell(row, job.attempt);
            cell(row, seconds(job.ageSeconds));
          });
          fill('uploaders', status.uploaders || [], (row, uploader) => {
            cell(row, uploader.userId == null ? 'none' : uploader.userId); cell(row, uploader.running);
            cell(row, Math.round(100 * uploader.share) + ' %');
          });
          const spark = document.getElementById('throughput');
          spark.replaceChildren();
          const most = Math.max(1, ...status.completedPerTenMinutes, ...status.failedPerTenMinutes);
          status.completedPerTenMinutes.forEach((done, index) => {
            for (const [count, kind] of [[done, ''], [status.failedPerTenMinutes[index], 'failed']]) {
              const column = document.createElement('div'); column.className = kind;
              column.style.height = (4 + 52 * count / most) + 'px'; column.title = count + (kind ? ' failed' : ' completed');
              spark.append(column);
            }
          });
          fill('failures', status.failures, (row, job) => {
            cell(row, job.id); cell(row, job.file); cell(row, job.type); cell(row, job.at || '');
            cell(row, job.errorMessage).className = 'error';
          });
          fill('workers', status.workers, (row, worker) => {
            cell(row, worker.host); cell(row, worker.pid); cell(row, worker.running); cell(row, seconds(worker.lastSeenSeconds) + ' ago');
          });
          document.body.dataset.refreshes = Number(document.body.dataset.refreshes) + 1;
        }
        async function refresh() {
          try {
            const response = await fetch('status.json', {cache: 'no-store'});
            if (response.ok) draw(await response.json());
            else document.getElementById('at').textContent = 'status.json: ' + response.status;
          } catch (error) { document.getElementById('at').textContent = 'unreachable: ' + error; }
          setTimeout(refresh, 2000);
        }
        refresh();
        </script></body></html>
        """
}
