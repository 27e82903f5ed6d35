// feynman_jobs' scripts for rq-dashboard's pages (they replace its inline scripts and underscore
// templates). Every value that comes from a job — description, result, meta, error, call string,
// ids — is written with textContent or as an attribute, never parsed as HTML.
(function () {
  "use strict";

  var body = document.body;
  var config = {
    page: body.dataset.page,
    prefix: body.dataset.prefix,
    instance: body.dataset.instance,
    pollInterval: Math.max(1000, parseInt(body.dataset.pollInterval, 10) || 2500),
  };
  var autorefresh = true;

  // -- helpers --------------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") {
        node.textContent = attrs.text === null || attrs.text === undefined ? "" : String(attrs.text);
      } else {
        node.setAttribute(name, attrs[name]);
      }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function link(href, text) {
    return el("a", { href: href, text: text });
  }

  function replaceRows(tbody, rows) {
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    rows.forEach(function (row) { tbody.appendChild(row); });
  }

  function emptyRow(columns, text) {
    return el("tr", {}, [el("td", { colspan: String(columns), text: text })]);
  }

  function url(path) {
    return config.prefix + config.instance + path;
  }

  function jobViewUrl(jobId) {
    return url("/view/job/" + encodeURIComponent(jobId));
  }

  function relative(iso) {
    if (!iso) { return "-"; }
    var then = new Date(iso);
    if (isNaN(then.getTime())) { return String(iso); }
    var seconds = Math.round((Date.now() - then.getTime()) / 1000);
    var future = seconds < 0;
    seconds = Math.abs(seconds);
    var units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
    for (var i = 0; i < units.length; i++) {
      var count = Math.floor(seconds / units[i][1]);
      if (count >= 1 || units[i][1] === 1) {
        var phrase = count + " " + units[i][0] + (count === 1 ? "" : "s");
        return future ? "in " + phrase : phrase + " ago";
      }
    }
    return String(iso);
  }

  function when(iso) {
    return iso ? relative(iso) + " / " + new Date(iso).toISOString() : "-";
  }

  function getJSON(path) {
    return fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) { throw data; }
          return data;
        });
      });
  }

  function post(path) {
    return fetch(path, { method: "POST", credentials: "same-origin" }).then(function (response) {
      return response.json().catch(function () { return {}; });
    });
  }

  function confirmThen(action, callback) {
    var modal = $("#confirmation-modal");
    document.getElementById("confirmation-modal-action").textContent = action;
    $("#confirmation-modal-yes").off("click").on("click", function () {
      modal.modal("hide");
      callback();
    });
    $("#confirmation-modal-no").off("click").on("click", function () { modal.modal("hide"); });
    modal.modal("show");
  }

  function poll(load) {
    function loop() {
      var next = function () { setTimeout(loop, config.pollInterval); };
      if (autorefresh) { load().then(next, next); } else { next(); }
    }
    loop();
  }

  var autorefreshSwitch = document.getElementById("autorefresh-switch");
  if (autorefreshSwitch) {
    autorefreshSwitch.addEventListener("change", function () { autorefresh = autorefreshSwitch.checked; });
  }
  var instances = document.getElementById("rq-instances");
  if (instances) {
    instances.addEventListener("change", function () {
      var number = instances.options[instances.selectedIndex].dataset.instanceNumber;
      window.location.pathname = config.prefix + number + "/view/queues";
    });
  }

  // -- pages ----------------------------------------------------------------------------------------

  var pages = {};

  pages.queues = function () {
    var tbody = document.querySelector("table#queues tbody");
    var columns = [
      ["count", "queued_url"],
      ["deferred_job_registry_count", "deferred_url"],
      ["scheduled_job_registry_count", "scheduled_url"],
      ["started_job_registry_count", "started_url"],
      ["finished_job_registry_count", "finished_url"],
      ["failed_job_registry_count", "failed_url"],
      ["canceled_job_registry_count", "canceled_url"],
    ];
    poll(function () {
      return getJSON(url("/data/queues.json")).then(function (data) {
        var rows = data.queues.map(function (queue) {
          var cells = [el("td", { text: queue.name })].concat(columns.map(function (column) {
            return el("td", { class: "narrow" }, [link(queue[column[1]], queue[column[0]])]);
          }));
          return el("tr", { "data-role": "queue" }, cells);
        });
        replaceRows(tbody, rows.length ? rows : [emptyRow(8, "No queues.")]);
      });
    });
  };

  pages.jobs = function () {
    var view = {
      queue: body.dataset.queue,
      registry: body.dataset.registry,
      perPage: body.dataset.perPage,
      order: body.dataset.order,
      page: parseInt(body.dataset.pageNumber, 10),
      enableDelete: body.dataset.enableDelete === "yes",
    };
    var tbody = document.querySelector("table#jobs tbody");
    var pager = document.querySelector("div#page-selection ul");

    function jobRow(job) {
      var name = el("td", {}, [
        el("span", { class: "description ellipsify", text: job.description }),
        el("div", { class: "job_id" }, [link(jobViewUrl(job.id), job.id)]),
      ]);
      if (job.exc_info) {
        name.appendChild(el("span", { class: "end_date", text: "Failed " + relative(job.ended_at) }));
        name.appendChild(el("pre", { class: "exc_info", text: job.exc_info }));
      }
      var actions = el("td", { class: "actions narrow" });
      if (job.exc_info) {
        var requeue = el("button", { type: "button", class: "btn btn-outline-warning btn-sm btn-block",
          text: "Requeue" });
        requeue.addEventListener("click", function () { post(requeueUrl(job.id)).then(load); });
        actions.appendChild(requeue);
      }
      if (view.enableDelete) {
        var remove = el("button", { type: "button", class: "btn btn-outline-danger btn-sm", text: "Delete" });
        remove.addEventListener("click", function () {
          confirmThen("delete job", function () { post(deleteUrl(job.id)).then(load); });
        });
        actions.appendChild(remove);
      }
      var row = el("tr", { "data-role": "job" }, [
        name, el("td", {}, [el("span", { class: "creation_date", text: relative(job.created_at) })]), actions,
      ]);
      row.dataset.jobId = job.id;
      return row;
    }

    function pageItem(target, text, disabled, active) {
      var classes = "page-item" + (disabled ? " disabled" : "") + (active ? " active" : "");
      return el("li", { class: classes }, [el("a", { class: "page-link", href: target || "#", text: text })]);
    }

    function paginate(pagination) {
      while (pager.firstChild) { pager.removeChild(pager.firstChild); }
      var none = pagination.num_pages === 0;
      pager.appendChild(pageItem(pagination.first_page.url, "\u00ab", pagination.current_page === 1 || none));
      pager.appendChild(pagination.prev_page ? pageItem(pagination.prev_page.url, "\u2039")
        : pageItem(null, "\u2039", true));
      pagination.pages_in_window.forEach(function (page) {
        pager.appendChild(pageItem(page.url, String(page.number), false, page.number === view.page));
      });
      pager.appendChild(pagination.next_page ? pageItem(pagination.next_page.url, "\u203a")
        : pageItem(null, "\u203a", true));
      pager.appendChild(pageItem(pagination.last_page.url, "\u00bb",
        pagination.current_page === pagination.num_pages || none));
    }

    function load() {
      var path = "/data/jobs/" + [view.queue, view.registry, view.perPage, view.order, view.page]
        .map(encodeURIComponent).join("/") + ".json";
      return getJSON(url(path)).then(function (data) {
        replaceRows(tbody, data.jobs.length ? data.jobs.map(jobRow) : [emptyRow(3, "No jobs.")]);
        paginate(data.pagination);
      });
    }

    function go() {
      var queue = document.getElementById("select-queue").value || "default";
      var target = [queue, document.getElementById("select-registry").value,
        document.getElementById("select-per-page").value, document.getElementById("select-sort-order").value, 1];
      window.location.href = url("/view/jobs/" + target.map(encodeURIComponent).join("/"));
    }

    ["select-queue", "select-registry", "select-sort-order", "select-per-page"].forEach(function (id) {
      document.getElementById(id).addEventListener("change", go);
    });
    document.querySelectorAll(".action-btn").forEach(function (button) {
      button.addEventListener("click", function () {
        confirmThen(button.dataset.action, function () { post(button.dataset.url).then(load); });
      });
    });
    poll(load);
  };

  function requeueUrl(jobId) {
    return config.prefix + "job/" + encodeURIComponent(jobId) + "/requeue";
  }

  function deleteUrl(jobId) {
    return config.prefix + "job/" + encodeURIComponent(jobId) + "/delete";
  }

  pages.job = function () {
    var jobId = body.dataset.jobId;
    var fields = {};
    document.querySelectorAll("#job-data [data-field]").forEach(function (node) {
      fields[node.dataset.field] = node;
    });
    var problem = document.getElementById("job-problem");
    var requeueButton = document.getElementById("requeue-job-btn");

    function show(job) {
      problem.classList.add("hidden");
      fields.description.textContent = job.description || "";
      fields.origin.textContent = job.origin || "";
      fields.status.textContent = job.status || "";
      fields.result.textContent = JSON.stringify(job.result, null, 2);
      var meta = job.metadata;
      try { meta = JSON.stringify(JSON.parse(job.metadata), null, 2); } catch (ignored) { /* as sent */ }
      fields.metadata.textContent = meta || "";
      ["created_at", "enqueued_at", "started_at", "ended_at"].forEach(function (name) {
        fields[name].textContent = when(job[name]);
      });
      fields.exc_info.textContent = job.exc_info || "";
      var dependencies = (job.depends_on || []).map(function (dependency, index) {
        var active = (job.depends_on_status || [])[index] === "active";
        return el("li", {}, [active ? link(jobViewUrl(dependency), dependency)
          : el("span", { text: dependency + " (Expired)" })]);
      });
      replaceRows(fields.depends_on, dependencies);
      requeueButton.classList.toggle("hidden", job.status !== "failed");
    }

    function load() {
      return getJSON(url("/data/job/" + encodeURIComponent(jobId) + ".json")).then(show, function (error) {
        problem.textContent = (error && error.detail) || "this job cannot be shown";
        problem.classList.remove("hidden");
      });
    }

    requeueButton.addEventListener("click", function () { post(requeueUrl(jobId)).then(load); });
    var deleteButton = document.getElementById("delete-job-btn");
    if (deleteButton) {
      deleteButton.addEventListener("click", function () {
        confirmThen("delete job", function () {
          post(deleteUrl(jobId)).then(function () { window.location.href = url("/view/queues"); });
        });
      });
    }
    poll(load);
  };

  pages.workers = function () {
    var tbody = document.querySelector("table#workers tbody");

    function workerRow(worker) {
      var name = el("td", { text: worker.name });
      if (worker.version && worker.python_version) {
        name.title = "RQ " + worker.version + " / Python " + worker.python_version;
      }
      var current;
      if (worker.current_job === "idle" || !worker.current_job) {
        current = el("td", { text: "idle" });
      } else {
        var job = worker.current_job;
        current = el("td", {}, [link(jobViewUrl(job.job_id), job.call_string || job.description || job.job_id)]);
        current.title = "Job ID: " + job.job_id + "\nDescription: " + (job.description || "") +
          "\nCreated at: " + relative(job.created_at);
      }
      return el("tr", { "data-role": "worker" }, [name, current, el("td", { text: worker.queues.join(", ") })]);
    }

    poll(function () {
      return getJSON(url("/data/workers.json")).then(function (data) {
        replaceRows(tbody, data.workers.length ? data.workers.map(workerRow) : [emptyRow(3, "No workers.")]);
      });
    });
  };

  if (pages[config.page]) { pages[config.page](); }
})();
