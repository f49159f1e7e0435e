/*
 * web/static/upload.js - the guest upload page /u/{token}.
 *
 * Sends each chosen file (or every file of a chosen folder) on its own as
 * POST <this page>/files, Content-Type application/dicom, with a progress
 * bar per file, then shows the studies received.  The upload session is
 * the HttpOnly cookie the page came with; the token is only in this page's
 * URL.  Nothing from the server is put in as HTML.
 *
 * Files go one at a time until one is received, then three at a time:
 * a request without the session cookie (the page's expired or was not
 * kept) opens a session of its own and spends a use of the link, and the
 * first answer brings the cookie the others then carry.  A 401 or 404
 * means the session has ended: the queue stops and the guest is told to
 * reload.  A file larger than the page's limit (#file-max) is skipped,
 * not streamed up to be refused.
 */
(function () {
	"use strict";

	var form = document.getElementById("upload-form");
	var list = document.getElementById("progress");
	var studies = {}; /* study_uid -> {row, files} */
	var accepted = 0, refused = 0;
	var fileMax = Number(document.getElementById("file-max").getAttribute("data-bytes")) || 0;
	var received = false; /* a file was received: the session cookie is set */
	var ended = false;    /* the session has ended: nothing more is sent */
	var PARALLEL = 3;

	function el(tag, text, cls) {
		var e = document.createElement(tag);
		if (text !== undefined && text !== null) e.textContent = text;
		if (cls) e.className = cls;
		return e;
	}

	function fmtDate(s) {
		return s && /^\d{8}$/.test(s) ? s.slice(0, 4) + "-" + s.slice(4, 6) + "-" + s.slice(6) : (s || "");
	}

	function fmtName(s) {
		if (!s) return "";
		var p = s.split("^");
		return p.length > 1 ? p[0] + ", " + p.slice(1).join(" ").trim() : s;
	}

	function fmtSize(n) {
		if (n >= 1073741824) return (n / 1073741824).toFixed(1).replace(/\.0$/, "") + " GB";
		if (n >= 1048576) return (n / 1048576).toFixed(1).replace(/\.0$/, "") + " MB";
		if (n >= 1024) return (n / 1024).toFixed(1).replace(/\.0$/, "") + " KB";
		return n + " bytes";
	}

	var totals = {studies: 0, files: 0};

	/* The page comes with the limit in bytes: shown in the reader's
	 * units, the exact form kept as the tooltip (the session's end is
	 * localtime.js's). */
	(function () {
		var max = document.getElementById("file-max");
		if (fileMax > 0) {
			max.title = fileMax + " bytes";
			max.textContent = fmtSize(fileMax);
		}
	})();

	/* The session is gone (401: no session, 404: the link ended): said
	 * once above the list, and the form stays disabled. */
	function sessionEnded() {
		if (ended) return;
		ended = true;
		var p = el("p", "Your upload session has ended: reload the page.", "message");
		p.id = "session-ended";
		p.setAttribute("role", "alert");
		list.parentNode.insertBefore(p, list);
		form.querySelector("button").disabled = true;
	}

	/* A file not received: its bar is emptied (nothing of it was kept;
	 * a full bar is for a received file) and the reason said. */
	function refuse(item, text) {
		item.querySelector(".state").textContent = text;
		item.querySelector("progress").value = 0;
		item.className = "refused";
		refused += 1;
	}

	function addStudy(res) {
		var st = res.study || {};
		var e = studies[res.study_uid];
		document.getElementById("summary-section").hidden = false;
		if (!e) {
			var tr = el("tr");
			tr.dataset.studyUid = res.study_uid;
			tr.appendChild(el("td", fmtName(st.patient_name)));
			tr.appendChild(el("td", fmtDate(st.study_date)));
			tr.appendChild(el("td", st.modality));
			tr.appendChild(el("td", st.description));
			var n = el("td", "0", "files");
			tr.appendChild(n);
			document.querySelector("#summary tbody").appendChild(tr);
			e = studies[res.study_uid] = {cell: n, files: 0};
		}
		e.files += 1;
		e.cell.textContent = String(e.files);
		// Files go up in parallel and answers may arrive out of order;
		// the session's totals only grow, so show the largest seen.
		totals.studies = Math.max(totals.studies, res.studies);
		totals.files = Math.max(totals.files, res.files);
		document.getElementById("summary-counts").textContent =
			totals.studies + " stud" + (totals.studies === 1 ? "y" : "ies") + " and " +
			totals.files + " file" + (totals.files === 1 ? "" : "s") + " received in this session.";
	}

	/* Sends one file; done() once it has an answer (or none). */
	function sendOne(file, item, done) {
		var bar = item.querySelector("progress");
		var state = item.querySelector(".state");
		var xhr = new XMLHttpRequest();
		xhr.open("POST", window.location.pathname.replace(/\/$/, "") + "/files");
		xhr.setRequestHeader("Content-Type", "application/dicom");
		xhr.setRequestHeader("Accept", "application/json");
		xhr.upload.onprogress = function (ev) {
			if (ev.lengthComputable) {
				bar.max = ev.total;
				bar.value = ev.loaded;
			}
		};
		state.textContent = "sending";
		xhr.onload = function () {
			var body = null;
			try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
			if (xhr.status === 201 && body) {
				bar.value = bar.max;
				state.textContent = "received";
				item.className = "ok";
				accepted += 1;
				received = true;
				addStudy(body);
			} else if (xhr.status === 401 || xhr.status === 404) {
				/* a 401 may be {"password_required": true}: no message */
				refuse(item, "not received: the upload session has ended");
				sessionEnded();
			} else {
				refuse(item, "refused: " + (body && body.error ? body.error.message : "HTTP " + xhr.status));
			}
			done();
		};
		xhr.onerror = function () {
			refuse(item, "failed: the connection was lost");
			done();
		};
		xhr.send(file);
	}

	function tooLarge(size) {
		var a = fmtSize(size), b = fmtSize(fileMax);
		if (a === b) { a = size + " bytes"; b = fileMax + " bytes"; }
		return "skipped: too large (" + a + "; a file may have at most " + b + ")";
	}

	function queue(files) {
		var i = 0, running = 0;
		document.getElementById("progress-section").hidden = false;
		var items = files.map(function (f) {
			var li = el("li");
			li.appendChild(el("span", f.webkitRelativePath || f.name, "name"));
			var bar = el("progress");
			bar.max = f.size || 1;
			bar.value = 0;
			li.appendChild(bar);
			li.appendChild(el("span", "waiting", "state"));
			list.appendChild(li);
			return li;
		});
		function next() {
			/* One at a time until a file is received (and so the
			 * session cookie is set), then PARALLEL at a time. */
			while (!ended && i < files.length && running < (received ? PARALLEL : 1)) {
				var k = i++;
				if (fileMax > 0 && files[k].size > fileMax) {
					refuse(items[k], tooLarge(files[k].size));
					continue;
				}
				running += 1;
				sendOne(files[k], items[k], function () {
					running -= 1;
					next();
				});
			}
			if (ended) {
				for (; i < files.length; i++) refuse(items[i], "not sent: the upload session has ended");
				return;
			}
			if (running === 0 && i >= files.length) form.querySelector("button").disabled = false;
		}
		form.querySelector("button").disabled = true;
		next();
	}

	/* Said under the Send button: a Send without a file. */
	var choose = el("p", "", "message");
	choose.id = "choose-message";
	choose.setAttribute("role", "alert");
	form.appendChild(choose);

	form.addEventListener("submit", function (ev) {
		ev.preventDefault();
		var files = [];
		["files", "folder"].forEach(function (id) {
			var input = document.getElementById(id);
			for (var k = 0; k < input.files.length; k++) files.push(input.files[k]);
			input.value = "";
		});
		choose.textContent = files.length || ended ? "" : "Choose at least one file.";
		if (files.length && !ended) queue(files);
	});
})();
