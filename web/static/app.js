/*
 * web/static/app.js - the studyshare web UI: log in, pick a worklist, see
 * its studies, share one, hand out guest links, manage the worklist's
 * upload links.  Plain JS, no build step.
 *
 * It talks to the JSON API of the gateway (API.md) with the bearer token
 * kept in sessionStorage (the worklist last chosen, per user, in
 * localStorage).  What it offers follows the permissions authz
 * reports per worklist (GET /api/v1/worklists); the daemons check them
 * again on every call.  Nothing from the server is ever put into the page
 * as HTML: text goes in with textContent.  A list shows only the answer to
 * its latest request (state.seq), and logging out (or in) clears whatever
 * the previous user saw.
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
		badTarget: null, /* the target the last share refused (marked) */
		upload: null,
		uploadPlace: null, /* the row of the link being edited (focus) */
		/* Each list's latest request: an answer to an older one is dropped. */
		seq: {session: 0, studies: 0, history: 0, links: 0, uploads: 0},
	};

	/* ---- the API ---------------------------------------------------- */

	class ApiError extends Error {
		constructor(status, code, message, retryAfter) {
			super(message);
			this.status = status;
			this.code = code;
			this.retryAfter = retryAfter || null; /* the Retry-After header */
		}
	}

	/* A form field the user has to correct: said in the form's message. */
	class FormError extends Error {}

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
			                   err.message || ("HTTP " + res.status),
			                   res.headers.get("Retry-After"));
		}
		return data;
	}

	/* Retry-After (delay-seconds or an HTTP date) as whole seconds, or null. */
	function retrySeconds(v) {
		if (!v)
			return null;
		let s = /^\s*\d+\s*$/.test(v) ? Number(v) : (Date.parse(v) - Date.now()) / 1000;
		if (!isFinite(s))
			return null;
		return Math.max(1, Math.ceil(s));
	}

	/* The API's field names as the forms label them. */
	const FIELDS = {
		expires_at: "Expiry", expires_in: "Expiry", max_uses: "Maximum uses",
		password: "Password", max_password_attempts: "Maximum password attempts",
		email: "Send the link to", message: "Message", worklist: "Worklist",
		study_uid: "Study", targets: "Recipients",
	};

	/* What the API says of a value, where it is too technical to show. */
	function reasonText(why) {
		let m = /^at most (\d+) bytes?$/.exec(why);
		if (m)
			return "too long (at most " + m[1] + " bytes)";
		m = /^at least (\d+) bytes?$/.exec(why);
		if (m)
			return "too short (at least " + m[1] + " bytes)";
		if (/^expected an RFC 3339 time/.test(why))
			return "not a date and time";
		if (why === "expected an email address")
			return "not an email address";
		return why;
	}

	/* A refused field ("field 'expires_at': must be in the future") in
	 * the form's words: "Expiry: must be in the future".  A field the
	 * forms do not show is left as the API said it. */
	function fieldText(msg) {
		const m = /^(?:field '(\w+)': ([\s\S]*)|missing field '(\w+)')$/.exec(msg || "");
		const name = m ? m[1] || m[3] : null;
		if (!name || !FIELDS[name])
			return msg;
		return FIELDS[name] + ": " + (m[1] ? reasonText(m[2]) : "missing");
	}

	/* What a 429, 503 or a network error means for the user, or null. */
	function statusText(err) {
		if (err.status === 429) {
			const s = retrySeconds(err.retryAfter);
			if (s === null)
				return "Too many attempts. Please wait a minute and try again.";
			if (s >= 120)
				return "Too many attempts. Please try again in " + Math.ceil(s / 60) + " minutes.";
			return "Too many attempts. Please try again in " + s + (s === 1 ? " second." : " seconds.");
		}
		if (err.status === 503 || err.status === 0)
			return "The service is unavailable. Please try again shortly.";
		return null;
	}

	function describe(err) {
		if (err instanceof FormError)
			return err.message;
		return statusText(err) || fieldText(err.message);
	}

	/* A request's button was disabled while it ran, which drops the
	 * focus to <body>: it goes to where the outcome is shown instead,
	 * unless the user has moved it meanwhile. */
	function focusAfter(btn, target) {
		const a = document.activeElement;
		if (!a || a === document.body || a === btn)
			target.focus();
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
			const was = btn.textContent, label = btn.getAttribute("aria-label");
			btn.textContent = ok ? "Copied" : "Copy failed";
			/* "Copy link X" names the button: it says the outcome too. */
			if (label)
				btn.setAttribute("aria-label", btn.textContent + label.replace(/^Copy/, ""));
			setTimeout(() => {
				btn.textContent = was;
				if (label)
					btn.setAttribute("aria-label", label);
			}, 1500);
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
		document.title = "Log in - studyshare";
		$("login-message").textContent = message || "";
		$("login-user").focus();
	}

	/* Forgets every worklist and study on screen and in state, and makes
	 * the answers still on their way stale: the next user must not see
	 * the previous one's. */
	function resetApp() {
		state.worklists = [];
		state.worklist = null;
		state.cursor = null;
		state.study = null;
		state.targets = [];
		state.badTarget = null;
		state.upload = null;
		state.uploadPlace = null;
		for (const k of Object.keys(state.seq))
			state.seq[k] += 1;
		for (const d of document.querySelectorAll("dialog[open]"))
			d.close();
		for (const id of ["worklist", "studies", "share-history", "target-list", "links", "uploads"])
			clear($(id));
		for (const id of ["worklist-info", "app-message", "share-study", "share-result", "links-study",
		                  "uploads-worklist", "links-list-message", "uploads-list-message"])
			$(id).textContent = "";
		for (const id of ["link-form", "upload-form", "upload-edit-form"])
			$(id).reset();
		for (const id of ["target-value", "share-message", "link-created-url", "upload-created-url"])
			$(id).value = "";
		for (const id of ["link-created", "upload-created", "upload-edit-form"])
			$(id).hidden = true;
		$("uploads-open").hidden = true;
		$("studies-more").hidden = true;
		$("studies-more").disabled = false;
		$("studies-empty").hidden = true;
	}

	function logout(message) {
		state.token = null;
		sessionStorage.removeItem("ss_token");
		sessionStorage.removeItem("ss_name");
		resetApp();
		showLogin(message);
	}

	/* start() failed: its 401 has already logged out.  Anything else (a
	 * daemon briefly down) shows the login form with the reason; the
	 * session is kept, so reloading the page tries again without it. */
	function startFailed(e) {
		if (e.status === 401)
			return;
		resetApp();
		showLogin("Your worklists could not be loaded: " + describe(e) +
		          ". Reload the page to try again, or log in.");
	}

	async function onLogin(ev) {
		ev.preventDefault();
		$("login-message").textContent = "";
		$("login-button").disabled = true;
		try {
			let r;
			try {
				r = await api("POST", "/api/v1/sessions", {
					user: $("login-user").value.trim(),
					password: $("login-password").value,
				});
			} catch (e) {
				$("login-message").textContent = e.status === 401 ? "Wrong user name or password." : describe(e);
				focusAfter($("login-button"), $("login-password"));
				return;
			}
			state.token = r.token;
			state.name = (r.user && r.user.name) || jwtSub(r.token);
			sessionStorage.setItem("ss_token", r.token);
			sessionStorage.setItem("ss_name", state.name);
			$("login-password").value = "";
			/* The login form is hidden from here on: a failure is said
			 * by startFailed, not in it. */
			await start().catch(startFailed);
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

	/* Where the user's choice of worklist is kept: in this browser, per
	 * user, across logouts (an id they may see, not a secret). */
	function lastWorklistKey() {
		return "ss_worklist:" + jwtSub(state.token);
	}

	/* The worklist shown first: the one the user last chose in this
	 * browser; otherwise the first where their own work arrives: a
	 * location, then a group, then their personal worklist, and an
	 * organisation's incoming worklist last (in the order listed). */
	function firstWorklist(wls) {
		const last = localStorage.getItem(lastWorklistKey());
		if (last && wls.some((w) => w.id === last))
			return last;
		const order = ["location", "group", "user", "organisation"];
		const rank = (w) => (order.indexOf(w.kind) < 0 ? order.length : order.indexOf(w.kind));
		return wls.reduce((a, w) => (rank(w) < rank(a) ? w : a)).id;
	}

	async function start() {
		resetApp();
		document.title = "studyshare";
		$("login-section").hidden = true;
		$("app-section").hidden = false;
		$("whoami").hidden = false;
		$("user-name").textContent = state.name || jwtSub(state.token);
		const gen = ++state.seq.session;
		let r;
		try {
			r = await api("GET", "/api/v1/worklists");
		} catch (e) {
			if (gen !== state.seq.session)
				return;
			throw e;
		}
		if (gen !== state.seq.session)
			return; /* logged out (or in again) meanwhile */
		state.worklists = r.worklists.filter((w) => w.permissions.indexOf("studies.view") >= 0);
		const sel = $("worklist");
		clear(sel);
		for (const w of state.worklists) {
			const o = el("option", worklistLabel(w));
			o.value = w.id;
			sel.appendChild(o);
		}
		if (state.worklists.length === 0) {
			$("app-message").textContent = "You are not a member of any worklist.";
			return;
		}
		sel.value = firstWorklist(state.worklists);
		sel.focus(); /* the login form's button is gone: the first choice */
		await pickWorklist();
	}

	async function pickWorklist() {
		state.worklist = state.worklists.find((w) => w.id === $("worklist").value) || null;
		if (!state.worklist)
			return;
		localStorage.setItem(lastWorklistKey(), state.worklist.id);
		document.title = worklistLabel(state.worklist) + " - studyshare";
		$("worklist-info").textContent = "Share code " + (state.worklist.share_code || "-") +
			(state.worklist.role ? " · role " + state.worklist.role : "");
		clear($("studies"));
		state.cursor = null;
		$("studies-more").hidden = true;
		$("studies-empty").hidden = true;
		$("uploads-open").hidden = !has("links.upload.manage");
		await loadStudies();
	}

	/* The next page of the worklist's studies (the first when state.cursor
	 * is null).  "Load more" stays disabled while a page is on its way, and
	 * only the latest request's answer is shown: a double click or a quick
	 * A -> B -> A switch of worklists adds no row twice. */
	async function loadStudies() {
		if (!state.worklist)
			return;
		const seq = ++state.seq.studies;
		const more = $("studies-more");
		more.disabled = true;
		$("app-message").textContent = "";
		const wl = state.worklist.id;
		let path = "/api/v1/worklists/" + encodeURIComponent(wl) + "/studies?limit=50";
		if (state.cursor)
			path += "&cursor=" + encodeURIComponent(state.cursor);
		try {
			const r = await api("GET", path);
			if (seq !== state.seq.studies || !state.worklist || state.worklist.id !== wl)
				return;
			for (const st of r.studies)
				$("studies").appendChild(studyRow(st));
			state.cursor = r.next_cursor || null;
			more.hidden = !state.cursor;
			$("studies-empty").hidden = $("studies").children.length > 0;
		} catch (e) {
			if (seq === state.seq.studies)
				$("app-message").textContent = describe(e);
		} finally {
			if (seq === state.seq.studies)
				more.disabled = false;
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
		state.badTarget = null;
		$("share-study").textContent = studyLabel(st);
		$("share-result").textContent = "";
		$("share-result").className = "message";
		$("share-message").value = "";
		$("target-value").value = ""; /* typed for another study, not added */
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
		clear($("share-history")); /* another study's, until this one's arrives */
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

	/* The recipient typed in, if any, becomes a target (a chip).  False
	 * when the input refuses it (an email that is not one): the browser
	 * says why there. */
	function takeTyped() {
		const input = $("target-value");
		const k = KINDS.find((x) => x.kind === $("target-kind").value);
		const v = input.value.trim();
		if (!k || !v)
			return true;
		if (!input.checkValidity()) {
			input.reportValidity();
			return false;
		}
		const t = {kind: k.kind};
		t[k.field] = v;
		if (!state.targets.some((x) => x.kind === t.kind && x[k.field] === v))
			state.targets.push(t);
		input.value = "";
		renderTargets();
		return true;
	}

	function addTarget(ev) {
		ev.preventDefault();
		takeTyped();
	}

	function targetText(t) {
		const k = KINDS.find((x) => x.kind === t.kind);
		return (k ? k.label : t.kind) + ": " + (t.id || t.code || t.email);
	}

	/* Which target a refusal names, by its place in the request, and
	 * why: "targets[1]: unknown user \"bob\"" (authz, share), or a
	 * value the gateway's checks refused, "field 'targets[0].id': at most
	 * 64 bytes".  Null for any other error. */
	function targetRefusal(msg) {
		const m = /^targets\[(\d+)\]:\s*(?:field '\w+':\s*)?([\s\S]*)$/.exec(msg || "") ||
			/^field 'targets\[(\d+)\](?:\.\w+)?':\s*([\s\S]*)$/.exec(msg || "");
		return m ? {index: Number(m[1]), why: reasonText(m[2])} : null;
	}

	/* A share refused for one target is said in the user's terms,
	 * "Physician (user) bob: unknown user", and its chip marked. */
	function shareError(e, sent) {
		const r = statusText(e) ? null : targetRefusal(e.message);
		const t = r ? sent[r.index] : null;
		if (!t)
			return describe(e);
		state.badTarget = t;
		const k = KINDS.find((x) => x.kind === t.kind);
		const v = t.id || t.code || t.email || "";
		/* The value is said once, before the reason. */
		let why = r.why.split("\"" + v + "\"").join("").replace(/\s+/g, " ").trim();
		if (why.startsWith(t.kind + " "))
			why = why.slice(t.kind.length + 1); /* "user belongs to ..." */
		why = why.replace(/^is /, "");
		return (k ? k.label : t.kind) + " " + v + ": " + (why || r.why);
	}

	function renderTargets() {
		const ul = $("target-list");
		clear(ul);
		state.targets.forEach((t, i) => {
			const li = el("li", targetText(t) + " ", t === state.badTarget ? "bad" : null);
			const rm = button("×", "small secondary", () => {
				state.targets.splice(i, 1);
				renderTargets();
			});
			rm.setAttribute("aria-label", "Remove " + targetText(t));
			li.appendChild(rm);
			ul.appendChild(li);
		});
		shareReady();
	}

	/* Share needs a target: a chip, or one typed and not yet added
	 * (Share adds it first, nothing typed is left out). */
	function shareReady() {
		$("share-submit").disabled = state.targets.length === 0 &&
			$("target-value").value.trim() === "";
	}

	async function submitShare() {
		if (!takeTyped() || state.targets.length === 0)
			return;
		const sent = state.targets.slice(); /* the error names one by its index */
		const body = {worklist: state.worklist.id, targets: sent};
		const uid = state.study.study_uid;
		const msg = $("share-message").value.trim();
		if (msg)
			body.message = msg;
		$("share-submit").disabled = true;
		const out = $("share-result");
		try {
			const r = await api("POST", "/api/v1/studies/" + encodeURIComponent(uid) +
			                    "/shares", body);
			if (!onStudy(uid, "share-dialog"))
				return;
			const parts = r.shares.map((s) => targetText(s.target) + " — " +
				(s.status === "invited" ? "invitation sent" : "delivered"));
			out.className = "message ok";
			out.textContent = "Shared: " + parts.join("; ");
			/* The next share may go to someone else: neither the
			 * targets nor the message (perhaps about the patient)
			 * carry over to it. */
			state.targets = [];
			state.badTarget = null;
			$("share-message").value = "";
			renderTargets();
			loadHistory();
		} catch (e) {
			if (!onStudy(uid, "share-dialog"))
				return;
			out.className = "message";
			out.textContent = shareError(e, sent);
			renderTargets(); /* marks the refused target, if one was */
		}
		focusAfter($("share-submit"), out);
	}

	/* Is the dialog still open on study uid?  An answer that arrives after
	 * the user moved to another study (another patient) must not be shown
	 * there, nor touch what is being typed for it. */
	function onStudy(uid, dialog) {
		return !!state.study && state.study.study_uid === uid && $(dialog).open;
	}

	/* Is an answer for study uid (request seq of list) still wanted? Not
	 * when the dialog has moved on to another study, or asked again. */
	function current(list, seq, uid) {
		return seq === state.seq[list] && !!state.study && state.study.study_uid === uid;
	}

	async function loadHistory() {
		if (!state.study || !state.worklist)
			return;
		const tb = $("share-history");
		const uid = state.study.study_uid;
		const seq = ++state.seq.history;
		try {
			const r = await api("GET", "/api/v1/studies/" + encodeURIComponent(uid) +
			                    "/shares?worklist=" + encodeURIComponent(state.worklist.id));
			if (!current("history", seq, uid))
				return;
			clear(tb);
			for (const s of r.shares) {
				const tr = el("tr");
				for (const v of [when(s.at), s.by, s.from, targetText(s.target) +
				                 (s.worklist ? " → " + s.worklist : ""), s.status])
					tr.appendChild(el("td", v));
				tb.appendChild(tr);
			}
		} catch (e) {
			if (!current("history", seq, uid))
				return;
			clear(tb);
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
		$("links-list-message").textContent = "";
		expiryLimits("link-expires");
		linkFormChanged();
		clear($("links")); /* another study's, until this one's arrive */
		$("links-empty").hidden = true;
		$("links-dialog").showModal();
		if (has("links.guest.view"))
			loadLinks();
	}

	/* An expiry input offers the times the API takes: from the next
	 * minute to MAX_EXPIRY_DAYS ahead (guestlink's --max-expiry default).
	 * Set when its form is shown, so that they are now's. */
	const MAX_EXPIRY_DAYS = 365;

	function expiryLimits(id) {
		const now = Date.now(), minute = 60000;
		$(id).min = localFromIso(new Date(Math.ceil((now + 1) / minute) * minute).toISOString());
		$(id).max = localFromIso(new Date(now + MAX_EXPIRY_DAYS * 86400000).toISOString());
	}

	/* A form's message is of its last attempt: it goes once the user
	 * edits a field, and when the browser stops a submit (a field it
	 * refuses), which the form's code never sees.  Such an attempt hides
	 * the link made before (panel created), as one that is sent does. */
	function clearOnEdit(form, out, created) {
		const edited = () => { $(out).textContent = ""; };
		$(form).addEventListener("input", edited);
		$(form).addEventListener("change", edited);
		$(form).addEventListener("invalid", () => {
			edited();
			if (created)
				$(created).hidden = true;
		}, true);
	}

	/* A whole number from a number input, null when empty.  Number(), not
	 * parseInt(): "1e3" is 1000, not 1, and "2.5" is refused, not 2. */
	function intOrNull(id, what) {
		const input = $(id);
		const v = input.value.trim();
		if (v === "") {
			if (input.validity && input.validity.badInput)
				throw new FormError(what + " must be a whole number.");
			return null;
		}
		const n = Number(v);
		if (!Number.isInteger(n))
			throw new FormError(what + " must be a whole number.");
		return n;
	}

	/* The password is typed or it is the date of birth, not both; the
	 * attempts only matter when there is a password. */
	function linkFormChanged() {
		const pw = $("link-password"), dob = $("link-dob");
		dob.disabled = pw.value !== "";
		pw.disabled = dob.checked;
		$("link-max-attempts").disabled = pw.value === "" && !dob.checked;
	}

	function uploadFormChanged() {
		$("upload-max-attempts").disabled = $("upload-password").value === "";
	}

	/* What the answer to a create says of the link's email, if one was
	 * asked for: queued (sent to ...) or not (send it yourself). */
	function createdText(what, link) {
		if (link.email_queued === false)
			return what + " created (the email could not be queued: send the link yourself):";
		if (link.email_queued)
			return what + " created and sent to " + link.email + ":";
		return what + " created:";
	}

	/* The body of POST .../guest-links from the form; FormError if a
	 * field needs correcting. */
	function linkBody() {
		const body = {worklist: state.worklist.id};
		const maxUses = intOrNull("link-max-uses", "Maximum uses");
		if (maxUses !== null)
			body.max_uses = maxUses;
		const exp = $("link-expires").value;
		if (exp) {
			body.expires_at = isoFromLocal(exp);
			if (!body.expires_at)
				throw new FormError("The expiry is not a date.");
		}
		const pw = $("link-password");
		if (!pw.disabled && pw.value)
			body.password = pw.value;
		if (!$("link-max-attempts").disabled) {
			const attempts = intOrNull("link-max-attempts", "Maximum password attempts");
			if (attempts !== null)
				body.max_password_attempts = attempts;
		}
		const email = $("link-email").value.trim();
		if (email)
			body.email = email;
		const msg = $("link-message").value.trim();
		if (msg)
			body.message = msg;
		body.password_is_dob = !$("link-dob").disabled && $("link-dob").checked;
		body.view_notification = $("link-notify").checked;
		body.include_priors = $("link-priors").checked;
		return body;
	}

	async function createLink(ev) {
		ev.preventDefault();
		$("link-result").textContent = "";
		/* The previous link is not shown beside this attempt's outcome:
		 * after a failure it could be sent in the belief it is new. */
		$("link-created").hidden = true;
		$("link-created-url").value = "";
		let body;
		try {
			body = linkBody();
		} catch (e) {
			$("link-result").textContent = describe(e);
			return;
		}
		const uid = state.study.study_uid;
		$("link-create").disabled = true;
		try {
			const link = await api("POST", "/api/v1/studies/" +
			                       encodeURIComponent(uid) + "/guest-links", body);
			if (!onStudy(uid, "links-dialog"))
				return;
			$("link-created-url").value = link.url;
			$("link-created-text").textContent = createdText("Link", link);
			$("link-created").hidden = false;
			$("link-form").reset();
			linkFormChanged();
			focusAfter($("link-create"), $("link-created-url"));
			if (has("links.guest.view"))
				loadLinks();
		} catch (e) {
			if (onStudy(uid, "links-dialog")) {
				$("link-result").textContent = describe(e);
				focusAfter($("link-create"), $("link-result"));
			}
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
		if (!state.study || !state.worklist)
			return;
		const tb = $("links");
		const uid = state.study.study_uid;
		const seq = ++state.seq.links;
		try {
			const r = await api("GET", "/api/v1/studies/" + encodeURIComponent(uid) +
			                    "/guest-links?worklist=" + encodeURIComponent(state.worklist.id));
			if (!current("links", seq, uid))
				return;
			clear(tb);
			$("links-empty").hidden = r.links.length > 0;
			for (const l of r.links)
				tb.appendChild(linkRow(l));
		} catch (e) {
			if (!current("links", seq, uid))
				return;
			clear(tb);
			$("links-empty").hidden = true;
			const tr = el("tr");
			tr.appendChild(el("td", describe(e)));
			tb.appendChild(tr);
		}
	}

	/* A link's URL (none once deleted) and its id: the notification
	 * mails name a link by its id only, and so do the row's field and
	 * buttons for those who hear them ("Copy link <id>"). */
	function linkCell(l, what) {
		const td = el("td");
		if (l.url) {
			const i = el("input");
			i.readOnly = true;
			i.value = l.url;
			i.className = "link-url";
			i.setAttribute("aria-label", "URL of " + what + " " + l.id);
			td.appendChild(i);
		} else {
			td.appendChild(el("span", "—", "muted"));
		}
		const id = el("div", "ID ", "link-id muted");
		id.appendChild(el("span", l.id, "mono"));
		td.appendChild(id);
		return td;
	}

	/* One of a link row's buttons, named with the link's id. */
	function rowButton(text, cls, l, what, onclick) {
		const b = button(text, "small " + cls, onclick);
		b.setAttribute("aria-label", text + " " + what + " " + l.id);
		return b;
	}

	function linkRow(l) {
		const tr = el("tr");
		tr.dataset.id = l.id;
		tr.appendChild(linkCell(l, "link"));
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
		/* Only a link that still opens is offered to be sent. */
		if (l.url && l.status === "active")
			act.appendChild(rowButton("Copy", "secondary copy-button", l, "link", (ev) => copy(l.url, ev.currentTarget)));
		if (l.can_delete && l.status === "locked")
			act.appendChild(rowButton("Unlock", "secondary unlock-button", l, "link", (ev) => linkAction(l, "unlock", ev.currentTarget)));
		if (l.can_delete && l.status !== "deleted")
			act.appendChild(rowButton("Delete", "danger delete-button", l, "link", (ev) => linkAction(l, "delete", ev.currentTarget)));
		tr.appendChild(act);
		return tr;
	}

	/* A links table was rebuilt after an action on link id, whose button
	 * (place p: at p.pos among its row's buttons, p.action and p.next the
	 * kinds of it and of the one after it) went with the old rows: focus
	 * moves to the row's button of the same kind, else to the one that
	 * followed it, else to the one now at its place; else to the next
	 * row's first button (or the previous row's), else to the table; not
	 * to <body>.  Unless the user has moved the focus elsewhere (to
	 * something still shown). */
	function refocus(tbody, table, p) {
		const a = document.activeElement;
		if (a && a !== document.body && !$(table).contains(a) && a.getClientRects().length > 0)
			return;
		const rows = Array.from($(tbody).children);
		const at = rows.findIndex((r) => r.dataset.id === p.id);
		const buttons = (r) => Array.from(r.querySelectorAll("td:last-child button"));
		if (at >= 0) {
			const b = buttons(rows[at]);
			const kind = (k) => (k ? b.find((x) => x.classList.contains(k)) : null);
			const to = kind(p.action) || kind(p.next) || b[Math.min(Math.max(p.pos, 0), b.length - 1)];
			if (to) {
				to.focus();
				return;
			}
		}
		/* The rows after it (or after where it was), then those before. */
		const next = at >= 0 ? at + 1 : Math.min(p.index, rows.length);
		const order = rows.slice(next).concat(rows.slice(0, at >= 0 ? at : next).reverse());
		for (const r of order) {
			const b = buttons(r);
			if (b.length) {
				b[0].focus();
				return;
			}
		}
		$(table).focus();
	}

	/* A row button's kind: its class "<action>-button". */
	function buttonKind(b) {
		return b ? Array.from(b.classList).find((c) => c.endsWith("-button")) || null : null;
	}

	/* Where an action's button is, for refocus: its row's link id, the
	 * row's place in the table, the button's place in the row, its kind
	 * and the kind of the button after it. */
	function placeOf(btn) {
		const tr = btn && btn.closest ? btn.closest("tr") : null;
		if (!tr)
			return null;
		const b = Array.from(tr.querySelectorAll("td:last-child button"));
		const pos = b.indexOf(btn);
		return {id: tr.dataset.id, index: Array.from(tr.parentNode.children).indexOf(tr),
		        pos, action: buttonKind(btn), next: buttonKind(b[pos + 1])};
	}

	async function linkAction(l, what, btn) {
		if (what === "delete" && !window.confirm("Delete this guest link? It stops working at once."))
			return;
		const place = placeOf(btn);
		const out = $("links-list-message");
		out.textContent = "";
		try {
			if (what === "delete") {
				await api("DELETE", "/api/v1/guest-links/" + encodeURIComponent(l.id));
				/* Its URL no longer works: not offered to copy. */
				if (l.url && $("link-created-url").value === l.url)
					$("link-created").hidden = true;
			} else {
				await api("POST", "/api/v1/guest-links/" + encodeURIComponent(l.id) + "/unlock");
			}
		} catch (e) {
			out.textContent = (what === "delete" ? "The link could not be deleted: "
			                                     : "The link could not be unlocked: ") + describe(e);
		}
		await loadLinks();
		if (place && $("links-dialog").open)
			refocus("links", "links-table", place);
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
		$("uploads-list-message").textContent = "";
		expiryLimits("upload-expires");
		uploadFormChanged();
		clear($("uploads")); /* perhaps another worklist's */
		$("uploads-empty").hidden = true;
		$("uploads-dialog").showModal();
		loadUploads();
	}

	/* The body of POST .../upload-links from the form; FormError if a
	 * field needs correcting. */
	function uploadBody() {
		const body = {};
		const maxUses = intOrNull("upload-max-uses", "Maximum uses");
		if (maxUses !== null)
			body.max_uses = maxUses;
		const exp = $("upload-expires").value;
		if (exp) {
			body.expires_at = isoFromLocal(exp);
			if (!body.expires_at)
				throw new FormError("The expiry is not a date.");
		}
		const pw = $("upload-password").value;
		if (pw)
			body.password = pw;
		if (!$("upload-max-attempts").disabled) {
			const attempts = intOrNull("upload-max-attempts", "Maximum password attempts");
			if (attempts !== null)
				body.max_password_attempts = attempts;
		}
		const email = $("upload-email").value.trim();
		if (email)
			body.email = email;
		const msg = $("upload-message").value.trim();
		if (msg)
			body.message = msg;
		body.notify_on_upload = $("upload-notify").checked;
		return body;
	}

	async function createUpload(ev) {
		ev.preventDefault();
		$("upload-result").textContent = "";
		$("upload-created").hidden = true; /* as createLink */
		$("upload-created-url").value = "";
		let body;
		try {
			body = uploadBody();
		} catch (e) {
			$("upload-result").textContent = describe(e);
			return;
		}
		const wl = state.worklist.id;
		const here = () => !!state.worklist && state.worklist.id === wl && $("uploads-dialog").open;
		$("upload-create").disabled = true;
		try {
			const link = await api("POST", "/api/v1/worklists/" +
			                       encodeURIComponent(wl) + "/upload-links", body);
			if (!here())
				return;
			$("upload-created-url").value = link.url;
			$("upload-created-text").textContent = createdText("Upload link", link);
			$("upload-created").hidden = false;
			$("upload-form").reset();
			uploadFormChanged();
			focusAfter($("upload-create"), $("upload-created-url"));
			loadUploads();
		} catch (e) {
			if (here()) {
				$("upload-result").textContent = describe(e);
				focusAfter($("upload-create"), $("upload-result"));
			}
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
		if (!state.worklist)
			return;
		const tb = $("uploads");
		const wl = state.worklist.id;
		const seq = ++state.seq.uploads;
		const wanted = () => seq === state.seq.uploads && !!state.worklist && state.worklist.id === wl;
		try {
			const r = await api("GET", "/api/v1/worklists/" + encodeURIComponent(wl) + "/upload-links");
			if (!wanted())
				return;
			clear(tb);
			$("uploads-empty").hidden = r.links.length > 0;
			for (const l of r.links)
				tb.appendChild(uploadRow(l));
		} catch (e) {
			if (!wanted())
				return;
			clear(tb);
			$("uploads-empty").hidden = true;
			const tr = el("tr");
			tr.appendChild(el("td", describe(e)));
			tb.appendChild(tr);
		}
	}

	function uploadRow(l) {
		const tr = el("tr");
		tr.dataset.id = l.id;
		tr.appendChild(linkCell(l, "upload link"));
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
		if (l.url && l.status === "active") /* as a guest link's */
			act.appendChild(rowButton("Copy", "secondary copy-button", l, "upload link", (ev) => copy(l.url, ev.currentTarget)));
		if (l.status === "active")
			act.appendChild(rowButton("Edit", "secondary edit-button", l, "upload link", (ev) => editUpload(l, ev.currentTarget)));
		if (l.status !== "deleted")
			act.appendChild(rowButton("Delete", "danger delete-button", l, "upload link", (ev) => deleteUpload(l, ev.currentTarget)));
		tr.appendChild(act);
		return tr;
	}

	function editUpload(l, btn) {
		state.upload = l;
		state.uploadPlace = placeOf(btn);
		$("upload-edit-id").textContent = l.id;
		const unlimited = l.max_uses === null || l.max_uses === undefined;
		$("upload-edit-max-uses").value = unlimited ? "" : l.max_uses;
		$("upload-edit-max-uses").placeholder = unlimited ? "unlimited" : "";
		const exp = $("upload-edit-expires");
		expiryLimits("upload-edit-expires");
		exp.value = localFromIso(l.expires_at);
		/* An expiry this very minute can stay as it is (it is not sent
		 * unless changed): the browser must not refuse it. */
		if (exp.value && exp.value < exp.min)
			exp.min = exp.value;
		$("upload-edit-message").value = l.message || "";
		$("upload-edit-notify").checked = !!l.notify_on_upload;
		$("upload-edit-result").textContent = "";
		$("upload-edit-form").hidden = false;
		$("upload-edit-max-uses").focus();
	}

	/* The PATCH body: only what changed.  The API can change a limit
	 * or an expiry but not remove one, so an emptied field is refused
	 * (FormError), not sent as nothing and shown as saved. */
	function uploadEditBody(l) {
		const body = {};
		const maxUses = intOrNull("upload-edit-max-uses", "Maximum uses");
		const limited = l.max_uses !== null && l.max_uses !== undefined;
		if (maxUses === null && limited)
			throw new FormError("Maximum uses cannot be removed (a link with a limit cannot " +
			                    "become unlimited): enter a number, or make a new link.");
		if (maxUses !== null && maxUses !== l.max_uses)
			body.max_uses = maxUses;
		const input = $("upload-edit-expires");
		const exp = input.value;
		if (!exp && input.validity && input.validity.badInput)
			throw new FormError("The expiry is not a complete date.");
		if (!exp && l.expires_at)
			throw new FormError("The expiry cannot be removed: choose a date.");
		if (exp && exp !== localFromIso(l.expires_at)) {
			body.expires_at = isoFromLocal(exp);
			if (!body.expires_at)
				throw new FormError("The expiry is not a date.");
		}
		const msg = $("upload-edit-message").value.trim();
		if (msg !== (l.message || ""))
			body.message = msg;
		if ($("upload-edit-notify").checked !== !!l.notify_on_upload)
			body.notify_on_upload = $("upload-edit-notify").checked;
		return body;
	}

	async function saveUpload(ev) {
		ev.preventDefault();
		const l = state.upload;
		$("upload-edit-result").textContent = "";
		let body;
		try {
			body = uploadEditBody(l);
		} catch (e) {
			$("upload-edit-result").textContent = describe(e);
			return;
		}
		if (Object.keys(body).length === 0) {
			closeUploadEdit();
			return;
		}
		$("upload-edit-save").disabled = true;
		try {
			await api("PATCH", "/api/v1/upload-links/" + encodeURIComponent(l.id), body);
			$("upload-edit-form").hidden = true;
			await loadUploads();
			backToUploadRow();
		} catch (e) {
			$("upload-edit-result").textContent = describe(e);
			focusAfter($("upload-edit-save"), $("upload-edit-result"));
		} finally {
			$("upload-edit-save").disabled = false;
		}
	}

	/* The edit form closes: the focus goes back to the link's row. */
	function closeUploadEdit() {
		$("upload-edit-form").hidden = true;
		backToUploadRow();
	}

	function backToUploadRow() {
		const p = state.uploadPlace;
		if (p && $("uploads-dialog").open)
			refocus("uploads", "uploads-table", p);
	}

	async function deleteUpload(l, btn) {
		if (!window.confirm("Delete this upload link? It stops working at once."))
			return;
		const place = placeOf(btn);
		const out = $("uploads-list-message");
		out.textContent = "";
		try {
			await api("DELETE", "/api/v1/upload-links/" + encodeURIComponent(l.id));
			if (state.upload && state.upload.id === l.id)
				$("upload-edit-form").hidden = true;
			if (l.url && $("upload-created-url").value === l.url)
				$("upload-created").hidden = true; /* as a deleted guest link's */
		} catch (e) {
			out.textContent = "The link could not be deleted: " + describe(e);
		}
		await loadUploads();
		if (place && $("uploads-dialog").open)
			refocus("uploads", "uploads-table", place);
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
		$("target-value").addEventListener("input", shareReady);
		/* Add stopped by the browser (not an email): the last outcome goes. */
		$("target-value").addEventListener("invalid", () => { $("share-result").textContent = ""; });
		$("share-close").addEventListener("click", () => $("share-dialog").close());
		$("new-link-toggle").addEventListener("change", () => {
			$("link-form").hidden = !$("new-link-toggle").checked;
			$("link-created").hidden = true;
			expiryLimits("link-expires");
		});
		$("link-form").addEventListener("submit", createLink);
		clearOnEdit("link-form", "link-result", "link-created");
		$("link-password").addEventListener("input", linkFormChanged);
		$("link-dob").addEventListener("change", linkFormChanged);
		$("upload-password").addEventListener("input", uploadFormChanged);
		$("link-created-copy").addEventListener("click",
			(ev) => copy($("link-created-url").value, ev.target));
		$("links-close").addEventListener("click", () => $("links-dialog").close());
		$("uploads-open").addEventListener("click", openUploads);
		$("new-upload-toggle").addEventListener("change", () => {
			$("upload-form").hidden = !$("new-upload-toggle").checked;
			$("upload-created").hidden = true;
			expiryLimits("upload-expires");
		});
		$("upload-form").addEventListener("submit", createUpload);
		clearOnEdit("upload-form", "upload-result", "upload-created");
		clearOnEdit("upload-edit-form", "upload-edit-result", null);
		$("upload-created-copy").addEventListener("click",
			(ev) => copy($("upload-created-url").value, ev.target));
		$("upload-edit-form").addEventListener("submit", saveUpload);
		$("upload-edit-cancel").addEventListener("click", closeUploadEdit);
		$("uploads-close").addEventListener("click", () => $("uploads-dialog").close());
		if (state.token)
			start().catch(startFailed);
		else
			showLogin("");
	});
})();
