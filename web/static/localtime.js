/*
 * web/static/localtime.js - the times on the server's pages in the
 * reader's own time (register.html, upload.html, guest_view.html).
 *
 * A page writes each time as <time datetime="<UTC, RFC 3339>">, its text
 * readable without this script; this shows it in the reader's time zone
 * and locale, the exact UTC form kept as the tooltip.  A time whose
 * datetime does not parse is left as the server wrote it.
 */
"use strict";

(function () {
	for (const t of document.querySelectorAll("time[datetime]")) {
		const iso = t.getAttribute("datetime");
		const when = new Date(iso);
		if (isNaN(when.getTime()))
			continue;
		t.title = iso;
		t.textContent = when.toLocaleString([], {dateStyle: "medium", timeStyle: "short"});
	}
})();
