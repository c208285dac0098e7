// colorkit serve: uploads each photo, follows it through the server's queue, shows the
// before/after comparison and offers the full-resolution download.
"use strict";

(() => {
  const PARALLEL_UPLOADS = 2;
  const POLL_MS = 400;

  const el = (id) => document.getElementById(id);
  const weightsSelect = el("weights");
  const weightsStatus = el("weights-status");
  const workingSize = el("working-size");
  const notice = el("notice");
  const drop = el("drop");
  const picker = el("files");
  const results = el("results");
  const downloadAll = el("download-all");
  const template = el("card");

  let weights = [];
  const cards = new Map(); // job id -> card
  const waiting = []; // [card, file] not uploaded yet
  let uploading = 0;
  let pollTimer = null;

  const STATUS_TEXT = {
    available: "loads with the first photo",
    loading: "loading…",
    ready: "ready",
  };

  function megabytes(bytes) {
    if (bytes < 2 ** 20) return `${Math.ceil(bytes / 1024)} kB`;
    const mb = bytes / 2 ** 20;
    return `${Number.isInteger(mb) ? mb : mb.toFixed(1)} MB`;
  }

  // -- weights ----------------------------------------------------------------------------
  function showWeights() {
    const chosen = weights.find((w) => w.key === weightsSelect.value);
    if (!chosen) return;
    weightsStatus.dataset.status = chosen.status;
    weightsStatus.textContent = STATUS_TEXT[chosen.status] || "not available";
    weightsStatus.title = chosen.description || "";
    if (chosen.status === "missing" || chosen.status === "error") {
      notice.replaceChildren(
        document.createTextNode(`The weights “${chosen.label}” cannot be used: ${chosen.message}. `),
        document.createTextNode("Choose other weights, or start the server with your own: "),
        Object.assign(document.createElement("code"), {
          textContent: "colorkit serve --weights CHECKPOINT",
        }),
      );
      notice.hidden = false;
    } else {
      notice.hidden = true;
    }
  }

  function updateWeights(list) {
    weights = list;
    for (const w of list) {
      let option = weightsSelect.querySelector(`option[value="${CSS.escape(w.key)}"]`);
      if (!option) {
        option = document.createElement("option");
        option.value = w.key;
        option.textContent = w.label;
        weightsSelect.append(option);
      }
      option.title = w.description || "";
    }
    showWeights();
  }

  weightsSelect.addEventListener("change", () => {
    const chosen = weights.find((w) => w.key === weightsSelect.value);
    if (chosen && chosen.status === "available") {
      fetch(`api/weights/${encodeURIComponent(chosen.key)}/load`, { method: "POST" })
        .then(() => poll());
    }
    showWeights();
  });

  // -- cards ------------------------------------------------------------------------------
  function newCard(name) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.querySelector(".name").textContent = name;
    const compare = card.querySelector(".compare");
    card.querySelector(".slider").addEventListener("input", (event) => {
      compare.style.setProperty("--position", `${event.target.value}%`);
    });
    results.append(card);
    return card;
  }

  function setStatus(card, status, text, progress) {
    card.dataset.status = status;
    card.querySelector(".status").textContent = text;
    const bar = card.querySelector("progress");
    if (progress === null) bar.removeAttribute("value"); // indeterminate
    else bar.value = progress;
  }

  function showJob(card, job) {
    if (card.dataset.shown === job.status) {
      if (job.status === "queued") setStatus(card, "queued", queuedText(job), null);
      return;
    }
    card.dataset.job = job.id;
    if (job.status === "queued") {
      setStatus(card, "queued", queuedText(job), null);
    } else if (job.status === "running") {
      setStatus(card, "running", `colorizing with ${job.weights}…`, null);
    } else if (job.status === "error") {
      setStatus(card, "error", job.message, 100);
    } else if (job.status === "done") {
      const base = `api/jobs/${encodeURIComponent(job.id)}`;
      const compare = card.querySelector(".compare");
      compare.querySelector(".before").src = `${base}/before.jpg`;
      compare.querySelector(".after").src = `${base}/after.jpg`;
      compare.hidden = false;
      const link = card.querySelector(".download");
      link.href = `${base}/result`;
      link.download = job.download_name;
      link.textContent = `Download ${job.download_name}`;
      link.hidden = false;
      card.querySelector(".details").textContent =
        `${job.width}×${job.height} px, ${megabytes(job.bytes)}, ${job.weights}, ` +
        `working size ${job.working_size}`;
      setStatus(card, "done", `done in ${job.seconds.toFixed(1)} s`, 100);
      downloadAll.setAttribute("aria-disabled", "false");
    }
    card.dataset.shown = job.status;
  }

  function queuedText(job) {
    return job.position ? `waiting: ${job.position} ahead` : "waiting for the colorizer";
  }

  // -- uploads ----------------------------------------------------------------------------
  function addFiles(files) {
    for (const file of files) {
      const card = newCard(file.name);
      setStatus(card, "waiting", "waiting to upload", 0);
      waiting.push([card, file]);
    }
    pump();
  }

  function pump() {
    while (uploading < PARALLEL_UPLOADS && waiting.length) {
      const [card, file] = waiting.shift();
      uploading += 1;
      upload(card, file).finally(() => {
        uploading -= 1;
        pump();
      });
    }
  }

  function upload(card, file) {
    return new Promise((resolve) => {
      const query = new URLSearchParams({
        name: file.name,
        weights: weightsSelect.value,
        working_size: workingSize.value,
      });
      const request = new XMLHttpRequest();
      request.open("POST", `api/jobs?${query}`);
      request.responseType = "json";
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) {
          const percent = Math.round((100 * event.loaded) / event.total);
          setStatus(card, "uploading", `uploading ${percent} %`, percent);
        }
      });
      request.addEventListener("load", () => {
        const body = request.response || {};
        if (request.status === 202) {
          cards.set(body.id, card);
          showJob(card, body);
          poll();
        } else {
          const reason = body.error || `the server answered ${request.status}`;
          setStatus(card, "error", reason, 100);
        }
        resolve();
      });
      request.addEventListener("error", () => {
        setStatus(card, "error", `${file.name}: the upload failed (is the server running?)`, 100);
        resolve();
      });
      setStatus(card, "uploading", "uploading 0 %", 0);
      request.send(file);
    });
  }

  // -- following the server ---------------------------------------------------------------
  async function poll() {
    clearTimeout(pollTimer);
    let state;
    try {
      const response = await fetch("api/state", { cache: "no-store" });
      state = await response.json();
      if (!response.ok) throw new Error(state.error || response.statusText);
    } catch (error) {
      notice.textContent = `The server does not answer (${error.message}); is it still running?`;
      notice.hidden = false;
      pollTimer = setTimeout(poll, 5 * POLL_MS);
      return;
    }
    updateWeights(state.weights);
    for (const job of state.jobs) {
      let card = cards.get(job.id);
      if (!card) {
        card = newCard(job.name); // a result from before the page was reloaded
        cards.set(job.id, card);
      }
      showJob(card, job);
    }
    const busy =
      state.jobs.some((job) => job.status === "queued" || job.status === "running") ||
      state.weights.some((w) => w.status === "loading") ||
      uploading > 0;
    if (busy) pollTimer = setTimeout(poll, POLL_MS);
  }

  async function start() {
    const response = await fetch("api/state", { cache: "no-store" });
    const state = await response.json();
    for (const w of state.weights) {
      const option = document.createElement("option");
      option.value = w.key;
      option.textContent = w.label;
      weightsSelect.append(option);
    }
    weightsSelect.value = state.default_weights;
    weightsSelect.disabled = false;
    Object.assign(workingSize, {
      value: state.working_size.default,
      min: state.working_size.min,
      max: state.working_size.max,
    });
    el("limits").textContent =
      `JPEG, PNG, WEBP, BMP, TIFF… up to ${megabytes(state.limits.upload_bytes)} ` +
      `and ${(state.limits.pixels / 1e6).toFixed(0)} megapixels each`;
    document.body.dataset.ready = "true";
    poll();
  }

  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    addFiles(event.dataTransfer.files);
  });
  picker.addEventListener("change", () => {
    addFiles(picker.files);
    picker.value = "";
  });

  start().catch((error) => {
    notice.textContent = `The page could not reach the server: ${error.message}`;
    notice.hidden = false;
  });
})();
