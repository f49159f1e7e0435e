/*
 * web/static/upload.js - the guest upload page /u/{token}.
 *
 * Sends each chosen file (or every file of a chosen folder) on its own as
 * POST <this page>/files, Content-Type application/dicom, three at a time,
 * with a progress bar per file, then shows the studies received.  The
 * upload session is the HttpOnly cookie the page came with; the token is
 * only in this page's URL.  Nothing from the server is put in as HTML.
 */
(function () {
	"use strict";

	var form = document.getElementById("upload-form");
	var list = document.getElementById("progress");
	var studies = {}; /* study_uid -> {row, files} */
	var accepted = 0, refused = 0;

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

	var totals = {studies: 0, files: 0};

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
		xhr.onload = function () {
			var body = null;
			try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
			if (xhr.status === 201 && body) {
				bar.value = bar.max;
				state.textContent = "received";
				item.className = "ok";
				accepted += 1;
				addStudy(body);
			} else {
				state.textContent = "refused: " + (body && body.error ? body.error.message : "HTTP " + xhr.status);
				item.className = "refused";
				refused += 1;
			}
			done();
		};
		xhr.onerror = function () {
			state.textContent = "failed: the connection was lost";
			item.className = "refused";
			refused += 1;
			done();
		};
		xhr.send(file);
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
			while (running < 3 && i < files.length) {
				var k = i++;
				running += 1;
				sendOne(files[k], items[k], function () {
					running -= 1;
					next();
				});
			}
			if (running === 0 && i >= files.length) form.querySelector("button").disabled = false;
		}
		form.querySelector("button").disabled = true;
		next();
	}

	form.addEventListener("submit", function (ev) {
		ev.preventDefault();
		var files = [];
		["files", "folder"].forEach(function (id) {
			var input = document.getElementById(id);
			for (var k = 0; k < input.files.length; k++) files.push(input.files[k]);
			input.value = "";
		});
		if (files.length) queue(files);
	});
})();
