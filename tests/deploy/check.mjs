// tests/deploy/check.mjs - reads and checks the deployment files for
// tests/integration/test_deploy.py.
//
//   node check.mjs dump FILE...   every YAML document of the files as JSON:
//                                 [{"file", "index", "doc"}], read as YAML
//                                 1.1 with merge keys (what Compose and
//                                 kubectl read)
//   node check.mjs k8s FILE...    checks every Kubernetes object in the
//                                 files against the API's schema; prints
//                                 one line per problem and exits 1 on any
//
// The schema check is two checks.  kubernetes-models validates each object
// with the JSON schemas generated from the Kubernetes OpenAPI document
// (types, formats, required fields, enums).  Those schemas allow unknown
// fields, as the API server does by default, so a misspelt field
// ("readinesProbe") would pass and silently do nothing: TypeScript's
// excess-property check against the same models' interfaces catches those.
// Kustomization files are skipped (they are no API object).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import ts from "typescript";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function readDocs(files) {
	const out = [];
	for (const file of files) {
		const text = fs.readFileSync(file, "utf8");
		const docs = YAML.parseAllDocuments(text, { version: "1.1", merge: true });
		docs.forEach((d, index) => {
			if (d.errors.length)
				throw new Error(`${file}: document ${index}: ${d.errors[0].message}`);
			const doc = d.toJS({ maxAliasCount: -1 });
			if (doc !== null && doc !== undefined)
				out.push({ file, index, doc });
		});
	}
	return out;
}

// "apps/v1" + "Deployment" -> "kubernetes-models/apps/v1/Deployment"
function modelPath(apiVersion, kind) {
	if (typeof apiVersion !== "string" || typeof kind !== "string")
		return null;
	const parts = apiVersion.split("/");
	const rel = parts.length === 1 ? `v1/${kind}` : `${parts[0]}/${parts[1]}/${kind}`;
	if (parts.length === 1 && apiVersion !== "v1")
		return null;
	try {
		require.resolve(`kubernetes-models/${rel}`);
	} catch {
		return null;
	}
	return `kubernetes-models/${rel}`;
}

function where(d) {
	const m = d.doc.metadata || {};
	return `${d.file}: ${d.doc.kind}/${m.name || "?"}`;
}

// JSON with one key or element per line, and the path of each line, so
// that a TypeScript diagnostic names the field it is about.
function layout(value) {
	const lines = [];
	const paths = [];
	const emit = (text, p) => {
		lines.push(text);
		paths.push(p);
	};
	const walk = (v, p, prefix, suffix, indent) => {
		const pad = " ".repeat(indent);
		if (Array.isArray(v) && v.length) {
			emit(pad + prefix + "[", p);
			v.forEach((e, i) => walk(e, `${p}[${i}]`, "", i < v.length - 1 ? "," : "", indent + 1));
			emit(pad + "]" + suffix, p);
		} else if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) {
			const keys = Object.keys(v);
			emit(pad + prefix + "{", p);
			keys.forEach((k, i) => walk(v[k], p ? `${p}.${k}` : k, JSON.stringify(k) + ": ",
				i < keys.length - 1 ? "," : "", indent + 1));
			emit(pad + "}" + suffix, p);
		} else {
			emit(pad + prefix + JSON.stringify(v) + suffix, p);
		}
	};
	walk(value, "", "", "", 0);
	return { lines, paths };
}

async function checkK8s(files) {
	const docs = readDocs(files);
	const problems = [];
	const checked = [];
	for (const d of docs) {
		const { apiVersion, kind } = d.doc;
		if (typeof apiVersion === "string" && apiVersion.startsWith("kustomize.config.k8s.io/"))
			continue;
		const mod = modelPath(apiVersion, kind);
		if (mod === null) {
			problems.push(`${where(d)}: unknown apiVersion/kind ${apiVersion} ${kind}`);
			continue;
		}
		const Model = (await import(mod))[kind];
		try {
			new Model(d.doc).validate();
		} catch (e) {
			problems.push(`${where(d)}: ${e.message}`);
		}
		checked.push({ d, mod });
	}

	// One virtual TypeScript file: each object assigned to its interface.
	const virt = path.join(here, "__manifests__.ts");
	let src = "";
	let line = 0;
	const spans = [];
	checked.forEach(({ d, mod }, i) => {
		src += `import type { I${d.doc.kind} as T${i} } from "${mod}";\n`;
		line++;
	});
	checked.forEach(({ d }, i) => {
		const { lines, paths } = layout(d.doc);
		src += `export const m${i}: T${i} =\n`;
		line++;
		spans.push({ d, first: line, paths });
		src += lines.join("\n") + ";\n";
		line += lines.length;
	});
	const opts = {
		strict: true, noEmit: true, skipLibCheck: true, types: [],
		target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.CommonJS,
		moduleResolution: ts.ModuleResolutionKind.Node10,
	};
	const host = ts.createCompilerHost(opts);
	const getSourceFile = host.getSourceFile.bind(host);
	const fileExists = host.fileExists.bind(host);
	const readFile = host.readFile.bind(host);
	host.getSourceFile = (f, lang, ...rest) =>
		f === virt ? ts.createSourceFile(f, src, lang, true) : getSourceFile(f, lang, ...rest);
	host.fileExists = (f) => f === virt || fileExists(f);
	host.readFile = (f) => (f === virt ? src : readFile(f));
	const program = ts.createProgram([virt], opts, host);
	for (const diag of ts.getPreEmitDiagnostics(program)) {
		const msg = ts.flattenDiagnosticMessageText(diag.messageText, " ");
		if (!diag.file || diag.file.fileName !== virt) {
			problems.push(`typescript: ${msg}`);
			continue;
		}
		const l = diag.file.getLineAndCharacterOfPosition(diag.start).line;
		const span = spans.filter((s) => s.first <= l).pop();
		if (!span) {
			problems.push(`typescript: ${msg}`);
			continue;
		}
		const p = span.paths[l - span.first] || "(top)";
		problems.push(`${where(span.d)}: ${p}: ${msg}`);
	}
	for (const p of problems)
		console.log(p);
	console.log(`k8s-schema: ${checked.length} objects checked, ${problems.length} problems`);
	return problems.length ? 1 : 0;
}

const [cmd, ...files] = process.argv.slice(2);
if (cmd === "dump") {
	process.stdout.write(JSON.stringify(readDocs(files)));
} else if (cmd === "k8s") {
	process.exitCode = await checkK8s(files);
} else {
	console.error("usage: node check.mjs dump|k8s FILE...");
	process.exitCode = 2;
}
