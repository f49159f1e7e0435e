/*
 * web/static/app.js - the studyshare web UI: log in, pick a worklist, see
 * its studies, share one, hand out guest links, manage the worklist's
 * upload links.  Plain JS, no build step.
 *
 * It talks to the JSON API of the gateway (API.md) with the bearer token
 * kept in sessionStorage.  What it offers follows the permissions authz
 * reports per worklist (GET /api/v1/worklists); the daemons check them
 * again on every call.  Nothing from the server is ever put into the page
 * as HTML: text goes in with textContent.
 */
"use strict";

(function () {
	const KINDS = [
		{kind: "organisation", perm: "studies.share.organisations", label: "Organisation", field: "id",
		 hint: "organisation id, e.g. northclinic"},
		{kind: "location", perm: "studies.share.locations", label: "Location", field: "id",
		 hint: "location id, e.g. mri"},
		{kind: "group", perm: "studies.share.groups", label: "Group", field: "id",
		 hint: "group id, e.g. neuro"},
		{kind: "user", perm: "studies.share.users", label: "Physician (user)", field: "id",
		 hint: "user id, e.g. bob"},
		{kind: "share_code", perm: "studies.share.code", label: "Share code", field: "code",
		 hint: "8 characters, e.g. 7K2M9QXA"},
		{kind: "email", perm: "studies.share.email", label: "Email", field: "email",
		 hint: "someone@example.org"},
	];

	const $ = (id) => document.getElementById(id);
	const state = {
		token: sessionStorage.getItem("ss_token"),
		name: sessionStorage.getItem("ss_name") || "",
		worklists: [],
		worklist: null,
		cursor: null,
		study: null,
		targets: [],
		upload: null,
	};

	/* ---- the API ---------------------------------------------------- */

	class ApiError extends Error {
		constructor(status, code, message) {
			super(message);
			this.status = status;
			this.code = code;
		}
	}

	async function api(method, path, body) {
		const headers = {"Accept": "application/json"};
		if (state.token)
			headers["Authorization"] = "Bearer " + state.token;
		const opts = {method, headers};
		if (body !== undefined) {
			headers["Content-Type"] = "application/json";
			opts.body = JSON.stringify(body);
		}
		let res;
		try {
			res = await fetch(path, opts);
		} catch (e) {
			throw new ApiError(0, "unavailable", "The server cannot be reached.");
		}
		if (res.status === 204)
			return null;
		let data = null;
		try {
			data = await res.json();
		} catch (e) {
			data = null;
		}
		if (!res.ok) {
			const err = (data && data.error) || {};
			if (res.status === 401 && path !== "/api/v1/sessions")
				logout("Your session has ended. Please log in again.");
			throw new ApiError(res.status, err.code || "error",
			                   err.message || ("HTTP " + res.status));
		}
		return data;
	}

	function describe(err) {
		if (err.status === 429)
			return "Too many attempts. Please wait a minute and try again.";
		if (err.status === 503 || err.status === 0)
			return "The service is unavailable. Please try again shortly.";
		return err.message;
	}

	/* ---- small DOM helpers ----------------------------------------- */

	function el(tag, text, cls) {
		const e = document.createElement(tag);
		if (text !== undefined && text !== null)
			e.textContent = String(text);
		if (cls)
			e.className = cls;
		return e;
	}

	function button(text, cls, onclick) {
		const b = el("button", text, cls);
		b.type = "button";
		b.addEventListener("click", onclick);
		return b;
	}

	function clear(node) {
		while (node.firstChild)
			node.removeChild(node.firstChild);
	}

	function personName(pn) {
		if (!pn)
			return "";
		const parts = pn.split("^");
		return parts.length > 1 ? parts[0] + ", " + parts.slice(1).join(" ").trim() : pn;
	}

	function date8(d) {
		return d && /^\d{8}$/.test(d) ? d.slice(0, 4) + "-" + d.slice(4, 6) + "-" + d.slice(6) : (d || "");
	}

	function when(iso) {
		if (!iso)
			return "";
		const d = new Date(iso);
		return isNaN(d) ? iso : d.toLocaleString();
	}

	function studyLabel(st) {
		const p = st.patient || {};
		return [personName(p.name), p.id, date8(st.study_date), st.modality, st.description]
			.filter(Boolean).join(" · ");
	}

	function has(perm) {
		return !!(state.worklist && state.worklist.permissions.indexOf(perm) >= 0);
	}

	async function copy(text, btn) {
		let ok = false;
		try {
			await navigator.clipboard.writeText(text);
			ok = true;
		} catch (e) {
			const t = el("textarea", text);
			document.body.appendChild(t);
			t.select();
			try {
				ok = document.execCommand("copy");
			} catch (e2) {
				ok = false;
			}
			t.remove();
		}
		if (btn) {
			const was = btn.textContent;
			btn.textContent = ok ? "Copied" : "Copy failed";
			setTimeout(() => { btn.textContent = was; }, 1500);
		}
	}

	/* ---- log in and out --------------------------------------------- */

	function jwtSub(tok) {
		try {
			const p = tok.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
			return JSON.parse(atob(p)).sub;
		} catch (e) {
			return "";
		}
	}

	function showLogin(message) {
		$("app-section").hidden = true;
		$("whoami").hidden = true;
		$("login-section").hidden = false;
		$("login-message").textContent = message || "";
		$("login-user").focus();
	}

	function logout(message) {
		state.token = null;
		sessionStorage.removeItem("ss_token");
		sessionStorage.removeItem("ss_name");
		for (const d of document.querySelectorAll("dialog[open]"))
			d.close();
		showLogin(message);
	}

	async function onLogin(ev) {
		ev.preventDefault();
		$("login-message").textContent = "";
		$("login-button").disabled = true;
		try {
			const r = await api("POST", "/api/v1/sessions", {
				user: $("login-user").value.trim(),
				password: $("login-password").value,
			});
			state.token = r.token;
			state.name = (r.user && r.user.name) || jwtSub(r.token);
			sessionStorage.setItem("ss_token", r.token);
			sessionStorage.setItem("ss_name", state.name);
			$("login-password").value = "";
			await start();
		} catch (e) {
			$("login-message").textContent = e.status === 401 ? "Wrong user name or password." : describe(e);
		} finally {
			$("login-button").disabled = false;
		}
	}

	/* ---- worklists and studies ------------------------------------- */

	function worklistLabel(w) {
		const kinds = {location: "Location", group: "Group", user: "Personal",
		               organisation: "Organisation"};
		return (kinds[w.kind] || w.kind) + ": " + (w.name || w.id);
	}

	async function start() {
		$("login-section").hidden = true;
		$("app-section").hidden = false;
		$("whoami").hidden = false;
		$("user-name").textContent = state.name || jwtSub(state.token);
		const r = await api("GET", "/api/v1/worklists");
		state.worklists = r.worklists.filter((w) => w.permissions.indexOf("studies.view") >= 0);
		const sel = $("worklist");
		clear(sel);
		for (const w of state.worklists) {
			const o = el("option", worklistLabel(w));
			o.value = w.id;
			sel.appendChild(o);
		}
		const last = sessionStorage.getItem("ss_worklist");
		if (last && state.worklists.some((w) => w.id === last))
			sel.value = last;
		if (state.worklists.length === 0) {
			$("app-message").textContent = "You are not a member of any worklist.";
			return;
		}
		await pickWorklist();
	}

	async function pickWorklist() {
		state.worklist = state.worklists.find((w) => w.id === $("worklist").value) || null;
		if (!state.worklist)
			return;
		sessionStorage.setItem("ss_worklist", state.worklist.id);
		$("worklist-info").textContent = "Share code " + (state.worklist.share_code || "-") +
			(state.worklist.role ? " · role " + state.worklist.role : "");
		clear($("studies"));
		state.cursor = null;
		$("uploads-open").hidden = !has("links.upload.manage");
		await loadStudies();
	}

	async function loadStudies() {
		$("app-message").textContent = "";
		const wl = state.worklist.id;
		let path = "/api/v1/worklists/" + encodeURIComponent(wl) + "/studies?limit=50";
		if (state.cursor)
			path += "&cursor=" + encodeURIComponent(state.cursor);
		try {
			const r = await api("GET", path);
			if (!state.worklist || state.worklist.id !== wl)
				return;
			for (const st of r.studies)
				$("studies").appendChild(studyRow(st));
			state.cursor = r.next_cursor || null;
			$("studies-more").hidden = !state.cursor;
			$("studies-empty").hidden = $("studies").children.length > 0;
		} catch (e) {
			$("app-message").textContent = describe(e);
		}
	}

	function canShare() {
		return has("studies.view") && has("studies.share") &&
			KINDS.some((k) => has(k.perm));
	}

	function studyRow(st) {
		const p = st.patient || {};
		const tr = el("tr");
		tr.dataset.uid = st.study_uid;
		for (const v of [personName(p.name), p.id, date8(st.study_date), st.modality,
		                 st.description, st.accession])
			tr.appendChild(el("td", v || ""));
		const td = el("td");
		if (canShare())
			td.appendChild(button("Share", "small share-button", () => openShare(st)));
		if (has("links.guest.view") || has("links.guest.create"))
			td.appendChild(button("Guest links", "small secondary links-button", () => openLinks(st)));
		tr.appendChild(td);
		return tr;
	}

	/* ---- the Share dialog ------------------------------------------ */

	function openShare(st) {
		state.study = st;
		state.targets = [];
		$("share-study").textContent = studyLabel(st);
		$("share-result").textContent = "";
		$("share-result").className = "message";
		$("share-message").value = "";
		const sel = $("target-kind");
		clear(sel);
		for (const k of KINDS) {
			if (!has(k.perm))
				continue;
			const o = el("option", k.label);
			o.value = k.kind;
			sel.appendChild(o);
		}
		kindChanged();
		renderTargets();
		$("share-dialog").showModal();
		loadHistory();
	}

	function kindChanged() {
		const k = KINDS.find((x) => x.kind === $("target-kind").value);
		if (!k)
			return;
		$("target-value").placeholder = k.hint;
		$("target-value").type = k.kind === "email" ? "email" : "text";
		$("target-value-label").textContent = k.label;
	}

	function addTarget(ev) {
		ev.preventDefault();
		const k = KINDS.find((x) => x.kind === $("target-kind").value);
		const v = $("target-value").value.trim();
		if (!k || !v)
			return;
		const t = {kind: k.kind};
		t[k.field] = v;
		if (!state.targets.some((x) => x.kind === t.kind && x[k.field] === v))
			state.targets.push(t);
		$("target-value").value = "";
		renderTargets();
	}

	function targetText(t) {
		const k = KINDS.find((x) => x.kind === t.kind);
		return (k ? k.label : t.kind) + ": " + (t.id || t.code || t.email);
	}

	function renderTargets() {
		const ul = $("target-list");
		clear(ul);
		state.targets.forEach((t, i) => {
			const li = el("li", targetText(t) + " ");
			li.appendChild(button("×", "small secondary", () => {
				state.targets.splice(i, 1);
				renderTargets();
			}));
			ul.appendChild(li);
		});
		$("share-submit").disabled = state.targets.length === 0;
	}

	async function submitShare() {
		const body = {worklist: state.worklist.id, targets: state.targets};
		const msg = $("share-message").value.trim();
		if (msg)
			body.message = msg;
		$("share-submit").disabled = true;
		const out = $("share-result");
		try {
			const r = await api("POST", "/api/v1/studies/" + encodeURIComponent(state.study.study_uid) +
			                    "/shares", body);
			const parts = r.shares.map((s) => targetText(s.target) + " — " +
				(s.status === "invited" ? "invitation sent" : "delivered"));
			out.className = "message ok";
			out.textContent = "Shared: " + parts.join("; ");
			state.targets = [];
			renderTargets();
			loadHistory();
		} catch (e) {
			out.className = "message";
			out.textContent = describe(e);
			$("share-submit").disabled = false;
		}
	}

	async function loadHistory() {
		const tb = $("share-history");
		clear(tb);
		try {
			const r = await api("GET", "/api/v1/studies/" + encodeURIComponent(state.study.study_uid) +
			                    "/shares?worklist=" + encodeURIComponent(state.worklist.id));
			for (const s of r.shares) {
				const tr = el("tr");
				for (const v of [when(s.at), s.by, s.from, targetText(s.target) +
				                 (s.worklist ? " → " + s.worklist : ""), s.status])
					tr.appendChild(el("td", v));
				tb.appendChild(tr);
			}
		} catch (e) {
			const tr = el("tr");
			tr.appendChild(el("td", describe(e)));
			tb.appendChild(tr);
		}
	}

	/* ---- the Guest links dialog ------------------------------------ */

	function openLinks(st) {
		state.study = st;
		$("links-study").textContent = studyLabel(st);
		$("link-create-section").hidden = !has("links.guest.create");
		$("link-list-section").hidden = !has("links.guest.view");
		$("new-link-toggle").checked = false;
		$("link-form").hidden = true;
		$("link-form").reset();
		$("link-created").hidden = true;
		$("link-result").textContent = "";
		$("links-dialog").showModal();
		if (has("links.guest.view"))
			loadLinks();
	}

	function intOrNull(id) {
		const v = $(id).value.trim();
		return v === "" ? null : parseInt(v, 10);
	}

	async function createLink(ev) {
		ev.preventDefault();
		const body = {worklist: state.worklist.id};
		const maxUses = intOrNull("link-max-uses");
		if (maxUses !== null)
			body.max_uses = maxUses;
		const exp = $("link-expires").value;
		if (exp) {
			const d = new Date(exp);
			if (isNaN(d)) {
				$("link-result").textContent = "The expiry is not a date.";
				return;
			}
			body.expires_at = d.toISOString().replace(/\.\d{3}Z$/, "Z");
		}
		const pw = $("link-password").value;
		if (pw)
			body.password = pw;
		const attempts = intOrNull("link-max-attempts");
		if (attempts !== null)
			body.max_password_attempts = attempts;
		const email = $("link-email").value.trim();
		if (email)
			body.email = email;
		const msg = $("link-message").value.trim();
		if (msg)
			body.message = msg;
		body.password_is_dob = $("link-dob").checked;
		body.view_notification = $("link-notify").checked;
		body.include_priors = $("link-priors").checked;
		$("link-create").disabled = true;
		$("link-result").textContent = "";
		try {
			const link = await api("POST", "/api/v1/studies/" +
			                       encodeURIComponent(state.study.study_uid) + "/guest-links", body);
			$("link-created-url").value = link.url;
			$("link-created").hidden = false;
			$("link-form").reset();
			if (has("links.guest.view"))
				loadLinks();
		} catch (e) {
			$("link-result").textContent = describe(e);
		} finally {
			$("link-create").disabled = false;
		}
	}

	function linkOptions(l) {
		const o = [];
		if (l.view_notification)
			o.push("notify on view");
		if (l.include_priors)
			o.push("priors (" + (l.priors ? l.priors.length : 0) + ")");
		if (l.message)
			o.push("message");
		return o.join(", ") || "—";
	}

	async function loadLinks() {
		const tb = $("links");
		try {
			const r = await api("GET", "/api/v1/studies/" + encodeURIComponent(state.study.study_uid) +
			                    "/guest-links?worklist=" + encodeURIComponent(state.worklist.id));
			clear(tb);
			$("links-empty").hidden = r.links.length > 0;
			for (const l of r.links)
				tb.appendChild(linkRow(l));
		} catch (e) {
			clear(tb);
			const tr = el("tr");
			tr.appendChild(el("td", describe(e)));
			tb.appendChild(tr);
		}
	}

	function linkRow(l) {
		const tr = el("tr");
		tr.dataset.id = l.id;
		const url = el("td");
		if (l.url) {
			const i = el("input");
			i.readOnly = true;
			i.value = l.url;
			i.className = "link-url";
			url.appendChild(i);
		} else {
			url.appendChild(el("span", "—", "muted"));
		}
		tr.appendChild(url);
		tr.appendChild(el("td", when(l.created_at) + (l.created_by ? " by " + l.created_by : "")));
		tr.appendChild(el("td", when(l.expires_at)));
		tr.appendChild(el("td", l.uses + " / " + (l.max_uses === null || l.max_uses === undefined ? "∞" : l.max_uses)));
		tr.appendChild(el("td", l.has_password
			? (l.password_is_dob ? "date of birth" : "yes") + " (" + l.password_attempts + "/" +
			  l.max_password_attempts + " wrong)"
			: "no"));
		tr.appendChild(el("td", l.email || "—"));
		tr.appendChild(el("td", linkOptions(l)));
		const st = el("td");
		st.appendChild(el("span", l.status.replace("_", " "), "status " + l.status));
		tr.appendChild(st);
		const act = el("td");
		if (l.url)
			act.appendChild(button("Copy", "small secondary copy-button", (ev) => copy(l.url, ev.target)));
		if (l.can_delete && l.status === "locked")
			act.appendChild(button("Unlock", "small secondary unlock-button", () => linkAction(l, "unlock")));
		if (l.can_delete && l.status !== "deleted")
			act.appendChild(button("Delete", "small danger delete-button", () => linkAction(l, "delete")));
		tr.appendChild(act);
		return tr;
	}

	async function linkAction(l, what) {
		if (what === "delete" && !window.confirm("Delete this guest link? It stops working at once."))
			return;
		try {
			if (what === "delete")
				await api("DELETE", "/api/v1/guest-links/" + encodeURIComponent(l.id));
			else
				await api("POST", "/api/v1/guest-links/" + encodeURIComponent(l.id) + "/unlock");
		} catch (e) {
			$("link-result").textContent = describe(e);
		}
		loadLinks();
	}

	/* ---- the Upload links dialog ------------------------------------ */

	function isoFromLocal(v) {
		const d = new Date(v);
		return isNaN(d) ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z");
	}

	/* An ISO time as the value of a datetime-local input (local time). */
	function localFromIso(iso) {
		const d = new Date(iso);
		if (!iso || isNaN(d))
			return "";
		const p = (n) => String(n).padStart(2, "0");
		return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" +
			p(d.getHours()) + ":" + p(d.getMinutes());
	}

	function openUploads() {
		if (!has("links.upload.manage"))
			return;
		$("uploads-worklist").textContent = worklistLabel(state.worklist);
		$("new-upload-toggle").checked = false;
		$("upload-form").hidden = true;
		$("upload-form").reset();
		$("upload-created").hidden = true;
		$("upload-edit-form").hidden = true;
		$("upload-result").textContent = "";
		$("uploads-dialog").showModal();
		loadUploads();
	}

	async function createUpload(ev) {
		ev.preventDefault();
		const body = {};
		const maxUses = intOrNull("upload-max-uses");
		if (maxUses !== null)
			body.max_uses = maxUses;
		const exp = $("upload-expires").value;
		if (exp) {
			body.expires_at = isoFromLocal(exp);
			if (!body.expires_at) {
				$("upload-result").textContent = "The expiry is not a date.";
				return;
			}
		}
		const pw = $("upload-password").value;
		if (pw)
			body.password = pw;
		const attempts = intOrNull("upload-max-attempts");
		if (attempts !== null)
			body.max_password_attempts = attempts;
		const email = $("upload-email").value.trim();
		if (email)
			body.email = email;
		const msg = $("upload-message").value.trim();
		if (msg)
			body.message = msg;
		body.notify_on_upload = $("upload-notify").checked;
		$("upload-create").disabled = true;
		$("upload-result").textContent = "";
		try {
			const link = await api("POST", "/api/v1/worklists/" +
			                       encodeURIComponent(state.worklist.id) + "/upload-links", body);
			$("upload-created-url").value = link.url;
			$("upload-created-text").textContent = link.email_queued === false
				? "Upload link created (the email could not be queued: send the link yourself):"
				: link.email_queued ? "Upload link created and sent to " + link.email + ":"
				: "Upload link created:";
			$("upload-created").hidden = false;
			$("upload-form").reset();
			loadUploads();
		} catch (e) {
			$("upload-result").textContent = describe(e);
		} finally {
			$("upload-create").disabled = false;
		}
	}

	function uploadOptions(l) {
		const o = [];
		if (l.notify_on_upload)
			o.push("notify on upload");
		if (l.message)
			o.push("message");
		return o.join(", ") || "—";
	}

	async function loadUploads() {
		const tb = $("uploads");
		const wl = state.worklist.id;
		try {
			const r = await api("GET", "/api/v1/worklists/" + encodeURIComponent(wl) + "/upload-links");
			if (!state.worklist || state.worklist.id !== wl)
				return;
			clear(tb);
			$("uploads-empty").hidden = r.links.length > 0;
			for (const l of r.links)
				tb.appendChild(uploadRow(l));
		} catch (e) {
			clear(tb);
			const tr = el("tr");
			tr.appendChild(el("td", describe(e)));
			tb.appendChild(tr);
		}
	}

	function uploadRow(l) {
		const tr = el("tr");
		tr.dataset.id = l.id;
		const url = el("td");
		if (l.url) {
			const i = el("input");
			i.readOnly = true;
			i.value = l.url;
			i.className = "link-url";
			url.appendChild(i);
		} else {
			url.appendChild(el("span", "—", "muted"));
		}
		tr.appendChild(url);
		tr.appendChild(el("td", when(l.created_at) + (l.created_by ? " by " + l.created_by : "")));
		tr.appendChild(el("td", when(l.expires_at)));
		tr.appendChild(el("td", l.uses + " / " + (l.max_uses === null || l.max_uses === undefined ? "∞" : l.max_uses)));
		tr.appendChild(el("td", l.has_password
			? "yes (" + l.password_attempts + "/" + l.max_password_attempts + " wrong)" : "no"));
		tr.appendChild(el("td", l.email || "—"));
		tr.appendChild(el("td", uploadOptions(l)));
		const st = el("td");
		st.appendChild(el("span", l.status.replace("_", " "), "status " + l.status));
		tr.appendChild(st);
		const act = el("td");
		if (l.url)
			act.appendChild(button("Copy", "small secondary copy-button", (ev) => copy(l.url, ev.target)));
		if (l.status === "active")
			act.appendChild(button("Edit", "small secondary edit-button", () => editUpload(l)));
		if (l.status !== "deleted")
			act.appendChild(button("Delete", "small danger delete-button", () => deleteUpload(l)));
		tr.appendChild(act);
		return tr;
	}

	function editUpload(l) {
		state.upload = l;
		$("upload-edit-id").textContent = l.id;
		$("upload-edit-max-uses").value = l.max_uses === null || l.max_uses === undefined ? "" : l.max_uses;
		$("upload-edit-expires").value = localFromIso(l.expires_at);
		$("upload-edit-message").value = l.message || "";
		$("upload-edit-notify").checked = !!l.notify_on_upload;
		$("upload-edit-result").textContent = "";
		$("upload-edit-form").hidden = false;
		$("upload-edit-max-uses").focus();
	}

	/* Sends only what changed: max_uses cannot go back to unlimited. */
	async function saveUpload(ev) {
		ev.preventDefault();
		const l = state.upload;
		const body = {};
		const maxUses = intOrNull("upload-edit-max-uses");
		if (maxUses !== null && maxUses !== l.max_uses)
			body.max_uses = maxUses;
		const exp = $("upload-edit-expires").value;
		if (exp && exp !== localFromIso(l.expires_at)) {
			body.expires_at = isoFromLocal(exp);
			if (!body.expires_at) {
				$("upload-edit-result").textContent = "The expiry is not a date.";
				return;
			}
		}
		const msg = $("upload-edit-message").value.trim();
		if (msg !== (l.message || ""))
			body.message = msg;
		if ($("upload-edit-notify").checked !== !!l.notify_on_upload)
			body.notify_on_upload = $("upload-edit-notify").checked;
		if (Object.keys(body).length === 0) {
			$("upload-edit-form").hidden = true;
			return;
		}
		$("upload-edit-save").disabled = true;
		try {
			await api("PATCH", "/api/v1/upload-links/" + encodeURIComponent(l.id), body);
			$("upload-edit-form").hidden = true;
			loadUploads();
		} catch (e) {
			$("upload-edit-result").textContent = describe(e);
		} finally {
			$("upload-edit-save").disabled = false;
		}
	}

	async function deleteUpload(l) {
		if (!window.confirm("Delete this upload link? It stops working at once."))
			return;
		try {
			await api("DELETE", "/api/v1/upload-links/" + encodeURIComponent(l.id));
			if (state.upload && state.upload.id === l.id)
				$("upload-edit-form").hidden = true;
		} catch (e) {
			$("upload-result").textContent = describe(e);
		}
		loadUploads();
	}

	/* ---- wiring ------------------------------------------------------ */

	document.addEventListener("DOMContentLoaded", () => {
		$("login-form").addEventListener("submit", onLogin);
		$("logout").addEventListener("click", () => logout(""));
		$("worklist").addEventListener("change", pickWorklist);
		$("studies-more").addEventListener("click", loadStudies);
		$("target-kind").addEventListener("change", kindChanged);
		$("share-add-form").addEventListener("submit", addTarget);
		$("share-submit").addEventListener("click", submitShare);
		$("share-close").addEventListener("click", () => $("share-dialog").close());
		$("new-link-toggle").addEventListener("change", () => {
			$("link-form").hidden = !$("new-link-toggle").checked;
			$("link-created").hidden = true;
		});
		$("link-form").addEventListener("submit", createLink);
		$("link-created-copy").addEventListener("click",
			(ev) => copy($("link-created-url").value, ev.target));
		$("links-close").addEventListener("click", () => $("links-dialog").close());
		$("uploads-open").addEventListener("click", openUploads);
		$("new-upload-toggle").addEventListener("change", () => {
			$("upload-form").hidden = !$("new-upload-toggle").checked;
			$("upload-created").hidden = true;
		});
		$("upload-form").addEventListener("submit", createUpload);
		$("upload-created-copy").addEventListener("click",
			(ev) => copy($("upload-created-url").value, ev.target));
		$("upload-edit-form").addEventListener("submit", saveUpload);
		$("upload-edit-cancel").addEventListener("click", () => { $("upload-edit-form").hidden = true; });
		$("uploads-close").addEventListener("click", () => $("uploads-dialog").close());
		if (state.token)
			start().catch((e) => showLogin(describe(e)));
		else
			showLogin("");
	});
})();
