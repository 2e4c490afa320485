// AeroVision web UI: #/libraries/<library_id> — one library: its numbers, adding images
// (library/upload.js), searching it (library/search.js) and its images (library/images.js).
import { ApiError, api } from "../api.js";
import { errorBox, fill, h, setTitle, stats, timeEl } from "../dom.js";
import { imageBrowser } from "../library/images.js";
import { searchLibrary } from "../library/search.js";
import { addImages, sizeText } from "../library/upload.js";
import { deleteLibraryControls, libraryPath } from "./libraries.js";

async function fetchLibrary(root, id, signal) {
  try {
    return await api(`api/v1/libraries/${encodeURIComponent(id)}`, { signal });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    setTitle("Library not found");
    fill(root, h("h1", { tabindex: "-1" }, "Library not found"),
      errorBox(err.message, { title: "404" }),
      h("p", {}, h("a", { href: "#/libraries" }, "Back to the libraries")));
    return null;
  }
}

function indexText(index) {
  if (!index) return "—";
  if (index.state !== "ready") return `not loaded${index.size_bytes ? ` (${sizeText(index.size_bytes)} on disk)` : ""}`;
  return `${index.entries} entr${index.entries === 1 ? "y" : "ies"}, ${sizeText(index.size_bytes)}`;
}

function numbers(library) {
  return stats([
    ["Images", String(library.image_count)],
    ["Index (this server process)", indexText(library.index)],
    ["Created", timeEl(library.created_at)],
  ]);
}

/** While the page shows: a file dropped beside a drop zone does nothing (the browser would
 * open it instead of the page, losing an upload under way). */
function guardDrops(signal) {
  const guard = (event) => {
    if (event.target instanceof Element && event.target.closest(".drop")) return;
    event.preventDefault();
    if (event.type === "dragover" && event.dataTransfer) event.dataTransfer.dropEffect = "none";
  };
  for (const type of ["dragover", "drop"]) window.addEventListener(type, guard);
  signal.addEventListener("abort", () => {
    for (const type of ["dragover", "drop"]) window.removeEventListener(type, guard);
  });
}

export async function viewLibrary(root, [id], signal) {
  let library = await fetchLibrary(root, id, signal);
  if (!library) return;
  setTitle(`Library ${library.name}`);
  guardDrops(signal);
  const numbersHolder = h("div", { class: "library-numbers" }, numbers(library));
  const pageStatus = h("p", { class: "visually-hidden", role: "status" });
  const refreshNumbers = async () => {
    try {
      library = await api(libraryPath(library), { signal });
      fill(numbersHolder, numbers(library));
    } catch (err) {
      if (!signal.aborted) console.warn(`cannot refresh the library: ${err.message}`);
    }
  };
  const images = imageBrowser(library, { signal, onChanged: refreshNumbers });
  const adder = addImages(library, {
    signal,
    onProgress: refreshNumbers,
    onDone: async () => {
      await Promise.all([refreshNumbers(), images.refresh()]);
    },
  });
  const searcher = searchLibrary(library, { signal, imageCount: () => library.image_count });
  const controls = deleteLibraryControls(library, {
    small: false,
    current: () => library,
    onDeleted: (message) => {
      pageStatus.textContent = message;
      location.hash = "#/libraries";
    },
    onRefused: (message) => {
      pageStatus.textContent = message;
    },
  });
  fill(root,
    h("p", { class: "crumbs" }, h("a", { href: "#/libraries" }, "← Libraries")),
    h("div", { class: "title-row" }, h("h1", { tabindex: "-1" }, library.name),
      h("div", { class: "library-actions" }, controls)),
    library.description ? h("p", { class: "lead" }, library.description) : null,
    pageStatus,
    numbersHolder,
    adder,
    searcher,
    images.root);
  await images.refresh();
}
