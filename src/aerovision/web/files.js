// AeroVision web UI: a task's files on the page (pictures, thumbnails, download links).
// With auth off an <img> or <a> points at the file itself, as it always did. With keys
// or accounts a file needs the Authorization header, which <img src> and <a href> cannot
// send: the file is fetched with it (api.js) and shown through a blob: URL, revoked when
// its element is no longer on the page or the page changes.
import { fileBlob, needsCredentials } from "./api.js";
import { fileUrl, h } from "./dom.js";

/** object URL → the element that shows it (revoked once that element left the page). */
const shown = new Map();
/** file URL → Promise<Blob>, for the current page (switching pictures fetches nothing again). */
let blobs = new Map();

function blobOf(url) {
  let promise = blobs.get(url);
  if (!promise) {
    promise = fileBlob(url);
    blobs.set(url, promise);
    promise.catch(() => blobs.delete(url)); // try again next time
  }
  return promise;
}

/** Revoke the object URLs of elements that are no longer in the document. */
function sweep() {
  for (const [url, el] of shown) {
    if (!el.isConnected) {
      URL.revokeObjectURL(url);
      shown.delete(url);
    }
  }
}

function objectUrl(blob, owner) {
  sweep();
  const url = URL.createObjectURL(blob);
  shown.set(url, owner);
  return url;
}

function revoke(url) {
  if (url && shown.has(url)) {
    URL.revokeObjectURL(url);
    shown.delete(url);
  }
}

/** A new page: revoke every object URL of the one before and forget its files. */
export function releaseFiles() {
  for (const url of shown.keys()) URL.revokeObjectURL(url);
  shown.clear();
  blobs = new Map();
}

/**
 * Show the task file `path` ("results/<uid>/matches.png") in `img`, and point `links`
 * (the picture's "open" and "download" links) at it. `img.dataset.file` names the file
 * shown. A file that cannot be fetched fires the image's "error" event, as a broken
 * src would.
 */
export function showFile(img, path, { links = [] } = {}) {
  img.dataset.file = path;
  const url = fileUrl(path);
  if (!needsCredentials()) {
    img.src = url;
    for (const a of links) a.href = url;
    return;
  }
  blobOf(url).then((blob) => {
    if (img.dataset.file !== path) return; // another file was asked for meanwhile
    const previous = img.getAttribute("src");
    const objUrl = objectUrl(blob, img);
    img.src = objUrl;
    for (const a of links) a.href = objUrl;
    if (previous !== objUrl) revoke(previous);
  }, (err) => {
    if (img.dataset.file !== path || err?.name === "AbortError") return;
    console.warn(`cannot show ${path}: ${err?.message || err}`);
    img.dispatchEvent(new Event("error"));
  });
}

/** An <img> showing the task file `path` (attrs as for h()). */
export function fileImage(path, attrs = {}) {
  const img = h("img", attrs);
  showFile(img, path);
  return img;
}

/** A click on a file link with credentials: fetch the file, point the link at its blob, click again. */
async function openWithCredentials(event, a, path) {
  if (a.getAttribute("href")?.startsWith("blob:")) return; // the browser opens or saves it
  event.preventDefault();
  if (a.dataset.fetching) return;
  a.dataset.fetching = "1";
  a.setAttribute("aria-busy", "true");
  try {
    const blob = await blobOf(fileUrl(path));
    a.href = objectUrl(blob, a);
    a.click();
  } catch (err) {
    a.title = `Cannot fetch ${path}: ${err?.message || err}`;
  } finally {
    delete a.dataset.fetching;
    a.removeAttribute("aria-busy");
  }
}

/**
 * A link to the task file `path`: `download` (a file name) saves it, `newTab` opens it
 * in a new tab; other attributes as for h().
 */
export function fileLink(path, { download, newTab, ...attrs } = {}, ...children) {
  const a = h("a", {
    ...attrs,
    href: fileUrl(path),
    download: download || null,
    target: newTab ? "_blank" : null,
    rel: newTab ? "noopener" : null,
    dataset: { file: path },
  }, children);
  if (needsCredentials()) a.addEventListener("click", (event) => openWithCredentials(event, a, path));
  return a;
}
