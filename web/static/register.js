/*
 * web/static/register.js - the registration page (/register?invite=...):
 * creates the account (POST /api/v1/registrations), logs it in and shows
 * the studies that were shared with it.  The invitation token is read
 * from the address bar, never written into the page.  Once the account
 * exists, a failure to log in or to list the studies is said under the
 * (then hidden) table: the account is there, the studies are one login away.
 */
"use strict";

(function () {
	const $ = (id) => document.getElementById(id);

	async function post(path, body) {
		const res = await fetch(path, {
			method: "POST",
			headers: {"Content-Type": "application/json", "Accept": "application/json"},
			body: JSON.stringify(body),
		});
		let data = null;
		try {
			data = await res.json();
		} catch (e) {
			data = null;
		}
		return {status: res.status, data};
	}

	/* The API's field names as the form labels them. */
	const FIELDS = {user: "User name", name: "Your name", password: "Password"};

	/* "field 'user': 1-64 characters ..." as "User name: 1-64 characters ...". */
	function fieldText(msg) {
		const m = /^field '(\w+)': ([\s\S]*)$/.exec(msg);
		return m && FIELDS[m[1]] ? FIELDS[m[1]] + ": " + m[2] : msg;
	}

	function explain(r) {
		const msg = r.data && r.data.error ? r.data.error.message : "";
		switch (r.status) {
		case 404:
			return "This invitation can no longer be used.";
		case 409:
			if (/under way/.test(msg))
				return "A registration with this invitation is under way. Please wait a minute and try again.";
			return "That user name (or this email address) is taken. Please choose another user name; " +
			       "if an earlier try was interrupted, enter the user name and password you gave then.";
		case 429:
			return "Too many attempts. Please wait a minute and try again.";
		case 503:
			/* The account may have been made before the failure. */
			return "The service is unavailable. Please try again shortly with the same user name and password.";
		default:
			return fieldText(msg) || "The account could not be created.";
		}
	}

	function cell(tr, text) {
		const td = document.createElement("td");
		td.textContent = text || "";
		tr.appendChild(td);
	}

	function personName(pn) {
		if (!pn)
			return "";
		const parts = pn.split("^");
		return parts.length > 1 ? parts[0] + ", " + parts.slice(1).join(" ").trim() : pn;
	}

	/* Why a call after the registration failed, for the guest. */
	function failure(status, data) {
		if (status === 0)
			return "the server cannot be reached";
		if (status === 429)
			return "too many attempts";
		if (status === 503)
			return "the service is unavailable";
		const msg = data && data.error ? data.error.message : "";
		return msg || "HTTP " + status;
	}

	/* The account exists but its studies cannot be shown here. */
	function sharedFailed(why) {
		$("shared-table").hidden = true;
		let p = $("shared-message");
		if (!p) {
			p = document.createElement("p");
			p.id = "shared-message";
			p.className = "message";
			p.setAttribute("role", "alert");
			$("shared-table").after(p);
		}
		p.textContent = "Your account is ready; log in to see them (" + why + ").";
	}

	async function listShared(user, password, name) {
		let login;
		try {
			login = await post("/api/v1/sessions", {user, password});
		} catch (e) {
			return failure(0);
		}
		if (login.status !== 200 || !login.data || !login.data.token)
			return failure(login.status, login.data);
		const tok = login.data.token;
		sessionStorage.setItem("ss_token", tok);
		sessionStorage.setItem("ss_name", name);
		let res, data = null;
		try {
			res = await fetch("/api/v1/worklists/" + encodeURIComponent("user:" + user) + "/studies",
			                  {headers: {"Authorization": "Bearer " + tok, "Accept": "application/json"}});
			data = await res.json();
		} catch (e) {
			if (!res)
				return failure(0);
		}
		if (!res.ok || !data || !Array.isArray(data.studies))
			return failure(res.status, data);
		for (const st of data.studies) {
			const tr = document.createElement("tr");
			const d = st.study_date || "";
			cell(tr, personName(st.patient && st.patient.name));
			cell(tr, /^\d{8}$/.test(d) ? d.slice(0, 4) + "-" + d.slice(4, 6) + "-" + d.slice(6) : d);
			cell(tr, st.modality);
			cell(tr, st.description);
			$("shared-rows").appendChild(tr);
		}
		return null;
	}

	async function showShared(user, password, name) {
		$("register-section").hidden = true;
		$("registered").hidden = false;
		$("welcome-name").textContent = name;
		$("welcome-user").textContent = user;
		const why = await listShared(user, password, name);
		if (why)
			sharedFailed(why);
	}

	async function onSubmit(ev) {
		ev.preventDefault();
		const invite = new URLSearchParams(window.location.search).get("invite") || "";
		const user = $("reg-user").value.trim();
		const name = $("reg-name").value.trim();
		const password = $("reg-password").value;
		$("register-message").textContent = "";
		$("register-button").disabled = true;
		let r;
		try {
			r = await post("/api/v1/registrations", {invite, user, name, password});
		} catch (e) {
			$("register-message").textContent = "The server cannot be reached.";
			return;
		} finally {
			$("register-button").disabled = false;
		}
		if (r.status !== 201) {
			$("register-message").textContent = explain(r);
			return;
		}
		await showShared(user, password, name);
	}

	document.addEventListener("DOMContentLoaded", () => {
		$("register-form").addEventListener("submit", onSubmit);
		/* The page is there to fill the form in: typing starts in it. */
		$("reg-user").focus();
	});
})();
