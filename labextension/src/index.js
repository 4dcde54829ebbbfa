// hpchub's walltime notice: the time left on this JupyterLab's batch job in the status bar,
// and a notice shortly before the job ends (threshold set by the hub's admin).
// Plain JavaScript, built once with @jupyterlab/builder and shipped prebuilt in hpchub.
import { Notification } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';
import queuePlugin from './queue';

function formatLeft(seconds) {
  const minutes = Math.max(0, Math.floor(seconds / 60));
  if (minutes >= 60) {
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }
  return `${minutes} min`;
}

async function fetchWalltime(settings) {
  const url = URLExt.join(settings.baseUrl, 'hpchub', 'walltime');
  const response = await ServerConnection.makeRequest(url, {}, settings);
  if (!response.ok) {
    return null;
  }
  return response.json();
}

const plugin = {
  id: 'hpchub-walltime:plugin',
  description: 'Time left on the batch job, and a notice before it ends.',
  autoStart: true,
  optional: [IStatusBar],
  activate: async (app, statusBar) => {
    const settings = ServerConnection.makeSettings();
    let info;
    try {
      info = await fetchWalltime(settings);
    } catch (error) {
      console.warn('hpchub-walltime: no walltime information', error);
      return;
    }
    if (!info || !info.end) {
      return; // not in a batch job, or no time limit
    }
    const item = new Widget();
    item.addClass('hpchub-walltime');
    item.node.title = `Your batch job ${info.job_id} ends at ${new Date(info.end * 1000).toLocaleString()}`;
    if (statusBar) {
      statusBar.registerStatusItem(plugin.id, { item, align: 'left', rank: 100 });
    }
    let warned = false;
    const update = () => {
      const left = info.end - Date.now() / 1000;
      if (left <= 0) {
        // The job reached its time limit: the server ends with it (it does not count on).
        item.node.textContent = `Job ${info.job_id} has ended`;
        return;
      }
      item.node.textContent = `Job ${info.job_id}: ${formatLeft(left)} left`;
      if (!warned && left <= info.warn_minutes * 60) {
        warned = true;
        Notification.warning(
          `Your batch job ${info.job_id} ends in ${formatLeft(left)}: save your work. ` +
            'The server stops when the job reaches its time limit.',
          { autoClose: false }
        );
      }
    };
    update();
    setInterval(update, 20000);
    // An administrator may change the time limit: ask again now and then.
    setInterval(async () => {
      try {
        const fresh = await fetchWalltime(settings);
        if (fresh && fresh.end) {
          info = fresh;
          update();
        }
      } catch (error) {
        console.warn('hpchub-walltime: refresh failed', error);
      }
    }, 300000);
  }
};

export default [plugin, queuePlugin];
