// hpchub's queue panel: the user's jobs on the cluster this JupyterLab runs on, with cancel,
// hold, release and the job's output opened in a tab; "Submit as batch job" on script files in
// the file browser. It reads /hpchub/queue (labqueue.py), which asks the scheduler through
// hpchub's adapter (one query serves every panel of the server for a few seconds).
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ServerConnection } from '@jupyterlab/services';
import { listIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

const REFRESH_MS = 30000; // while the panel is shown
const SUBMIT_COMMAND = 'hpchub-queue:submit';

async function request(settings, path, init = {}) {
  const url = URLExt.join(settings.baseUrl, 'hpchub', 'queue', ...path);
  const response = await ServerConnection.makeRequest(url, init, settings);
  let body = {};
  try {
    body = await response.json();
  } catch (error) {
    body = { error: `the server answered ${response.status}` };
  }
  if (!response.ok) {
    throw new Error(body.error || `the server answered ${response.status}`);
  }
  return body;
}

function element(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) {
    node.append(child);
  }
  return node;
}

function describe(job) {
  if (job.held) {
    return job.reason ? `held: ${job.reason}` : 'held';
  }
  if (job.state === 'pending') {
    return job.reason ? `waiting: ${job.reason}` : 'waiting';
  }
  if (job.state === 'running') {
    return job.nodes ? `running on ${job.nodes}` : 'running';
  }
  return job.reason ? `${job.state}: ${job.reason}` : job.state;
}

class QueuePanel extends Widget {
  constructor(app, settings) {
    super();
    this.app = app;
    this.settings = settings;
    this.id = 'hpchub-queue';
    this.addClass('hpchub-queue');
    this.title.icon = listIcon;
    this.title.caption = 'Your batch jobs on this cluster';
    this.heading = element('div', { className: 'hpchub-queue-heading' });
    this.refreshButton = element('button', { className: 'jp-Button hpchub-queue-refresh', textContent: 'Refresh' });
    this.refreshButton.addEventListener('click', () => this.refresh());
    this.message = element('div', { className: 'hpchub-queue-message' });
    this.list = element('div', { className: 'hpchub-queue-jobs' });
    this.node.append(
      element('div', { className: 'hpchub-queue-bar' }, [this.heading, this.refreshButton]),
      this.message,
      this.list
    );
    this.timer = null;
  }

  onAfterShow() {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  onAfterHide() {
    clearInterval(this.timer);
    this.timer = null;
  }

  say(text) {
    this.message.textContent = text || '';
  }

  async refresh() {
    let listing;
    try {
      listing = await request(this.settings, []);
    } catch (error) {
      this.say(`The job list cannot be read: ${error.message}`);
      return;
    }
    const where = listing.cluster ? `${listing.cluster} (${listing.scheduler})` : listing.scheduler;
    this.heading.textContent = `${listing.user} on ${where}`;
    this.say(listing.error ? `The scheduler did not answer: ${listing.error}` : '');
    this.render(listing);
  }

  render(listing) {
    // One block per job (id and name, its state, its buttons): the sidebar is narrow.
    const blocks = [];
    for (const job of listing.jobs) {
      const buttons = element('div', { className: 'hpchub-queue-actions' });
      const offer = (action, label, shown) => {
        if (shown) {
          const button = element('button', { className: `jp-Button hpchub-queue-${action}`, textContent: label });
          button.addEventListener('click', () => this.act(job, action));
          buttons.append(button);
        }
      };
      const live = job.state === 'pending' || job.state === 'running';
      offer('cancel', 'Cancel', live);
      offer('hold', 'Hold', listing.can.hold && job.state === 'pending' && !job.held);
      offer('release', 'Release', listing.can.release && job.held);
      offer('output', 'Output', listing.can.output);
      const block = element('div', { className: `hpchub-queue-job hpchub-queue-${job.state}` }, [
        element('div', { className: 'hpchub-queue-title', title: job.name }, [
          element('span', { className: 'hpchub-queue-id', textContent: job.id }),
          ` ${job.name}`
        ]),
        element('div', { className: 'hpchub-queue-state', textContent: describe(job), title: job.native_state }),
        buttons
      ]);
      block.dataset.jobId = job.id;
      blocks.push(block);
    }
    if (listing.jobs.length === 0 && !listing.error) {
      blocks.push(element('div', { className: 'hpchub-queue-empty', textContent: 'You have no jobs in the queue.' }));
    }
    this.list.replaceChildren(...blocks);
  }

  async act(job, action) {
    if (action === 'output') {
      return this.openOutput(job);
    }
    if (action === 'cancel') {
      const answer = await showDialog({
        title: `Cancel job ${job.id}?`,
        body: `${job.name}: ${describe(job)}. Whatever it has not written out is lost.`,
        buttons: [Dialog.cancelButton({ label: 'Keep it' }), Dialog.warnButton({ label: 'Cancel job' })]
      });
      if (!answer.button.accept) {
        return;
      }
    }
    try {
      await request(this.settings, [job.id, action], { method: 'POST' });
      Notification.success(`Job ${job.id}: ${action === 'cancel' ? 'cancelled' : action + ' done'}`, {
        autoClose: 4000
      });
    } catch (error) {
      Notification.error(`Job ${job.id}: ${error.message}`, { autoClose: false });
    }
    await this.refresh();
  }

  async openOutput(job) {
    let found;
    try {
      found = await request(this.settings, [job.id, 'output']);
    } catch (error) {
      Notification.error(`Job ${job.id}: ${error.message}`, { autoClose: 8000 });
      return;
    }
    if (found.path === null) {
      Notification.info(`Job ${job.id}: ${found.message}`, { autoClose: 8000 });
    } else if (!found.exists) {
      Notification.info(`Job ${job.id} has not written ${found.path} yet`, { autoClose: 6000 });
    } else {
      await this.app.commands.execute('docmanager:open', { path: found.path, factory: 'Editor' });
    }
  }
}

function minutes(seconds) {
  return seconds < 120 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
}

// While a kernel's batch job waits in the queue (hpchub kernel add --slurm ...), say so: the
// notebook itself only shows that its kernel is starting.
function watchWaitingKernels(app, settings) {
  const usesBatchKernels = () =>
    Object.values(app.serviceManager.kernelspecs.specs?.kernelspecs || {}).some(
      spec => spec?.metadata?.kernel_provisioner?.provisioner_name === 'hpchub-batch'
    );
  const shown = new Map(); // kernel id -> notification id
  setInterval(async () => {
    if (document.hidden || !usesBatchKernels()) {
      return;
    }
    let waiting;
    try {
      waiting = (await request(settings, ['kernels'])).waiting;
    } catch (error) {
      return;
    }
    const now = new Set();
    for (const kernel of waiting) {
      now.add(kernel.kernel_id);
      const reason = kernel.reason ? ` (${kernel.reason})` : '';
      const message =
        `Your kernel waits in the queue as job ${kernel.job_id}${reason}, for ${minutes(kernel.waited)} so far. ` +
        'It starts when the job does; the Jobs panel can cancel it.';
      if (shown.has(kernel.kernel_id)) {
        Notification.update({ id: shown.get(kernel.kernel_id), message, type: 'info', autoClose: false });
      } else {
        shown.set(kernel.kernel_id, Notification.info(message, { autoClose: false }));
      }
    }
    for (const [kernelId, notification] of shown) {
      if (!now.has(kernelId)) {
        Notification.dismiss(notification);
        shown.delete(kernelId);
      }
    }
  }, 5000);
}

const plugin = {
  id: 'hpchub-walltime:queue',
  description: 'A panel of your batch jobs, and script files submitted from the file browser.',
  autoStart: true,
  optional: [IFileBrowserFactory],
  activate: (app, browsers) => {
    const settings = ServerConnection.makeSettings();
    const panel = new QueuePanel(app, settings);
    app.shell.add(panel, 'left', { rank: 650 });
    watchWaitingKernels(app, settings);
    if (!browsers) {
      return;
    }
    app.commands.addCommand(SUBMIT_COMMAND, {
      label: 'Submit as Batch Job',
      caption: 'Submit this script to the batch queue, as it is, from its folder',
      isVisible: () => {
        const item = browsers.tracker.currentWidget?.selectedItems().next().value;
        return !!item && item.type === 'file';
      },
      execute: async () => {
        const item = browsers.tracker.currentWidget?.selectedItems().next().value;
        if (!item) {
          return;
        }
        try {
          const submitted = await request(settings, [], { method: 'POST', body: JSON.stringify({ path: item.path }) });
          Notification.success(`${item.name} submitted: job ${submitted.job_id}`, { autoClose: 5000 });
        } catch (error) {
          Notification.error(`${item.name} was not submitted: ${error.message}`, { autoClose: false });
        }
        if (panel.isVisible) {
          await panel.refresh();
        }
      }
    });
    app.contextMenu.addItem({ command: SUBMIT_COMMAND, selector: '.jp-DirListing-item[data-isdir="false"]', rank: 3 });
  }
};

export default plugin;
