// AeroVision web UI: a library's images as a grid of thumbnails (through files.js, so
// they come with the credentials), each with its brief and tags, paged, with a tag
// filter, and "Remove" (with confirmation).
import { ApiError, api } from "../api.js";
import { errorBox, fill, h, loading, timeEl } from "../dom.js";
import { fileImage, fileLink } from "../files.js";
import { imageName } from "./upload.js";

export const IMAGES_PAGE = 24;

const imagesPath = (library) => `api/v1/libraries/${encodeURIComponent(library.library_id)}/images`;

/** "Remove", then "Yes, remove" / "Cancel". */
function removeControls(image, ctx) {
  const name = imageName(image);
  const confirmBox = h("span", { class: "confirm", hidden: true });
  const remove = h("button", { type: "button", class: "danger small", "aria-label": `Remove ${name}`, onclick: () => {
    remove.hidden = true;
    confirmBox.hidden = false;
    confirmBox.querySelector("button").focus();
  } }, "Remove");
  const yes = h("button", { type: "button", class: "danger small", "aria-label": `Yes, remove ${name}`,
    onclick: async () => {
      yes.disabled = true;
      try {
        await api(`${imagesPath(ctx.library)}/${encodeURIComponent(image.image_id)}`, { method: "DELETE" });
        ctx.say(`Removed ${name}.`);
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) ctx.say(`Not removed: ${err.message}`);
      }
      await ctx.removed();
    } }, "Yes, remove");
  const cancel = h("button", { type: "button", class: "secondary small", onclick: () => {
    confirmBox.hidden = true;
    remove.hidden = false;
    remove.focus();
  } }, "Cancel");
  confirmBox.append(yes, " ", cancel);
  return h("div", { class: "card-actions" }, remove, confirmBox);
}

function imageCard(image, ctx) {
  const alt = image.brief ? `Thumbnail of ${image.brief}` : `Thumbnail of image ${image.image_id.slice(0, 8)}`;
  const thumb = fileImage(image.thumbnail, { alt, loading: "lazy" });
  thumb.addEventListener("error", () => thumb.replaceWith(h("span", { class: "thumb-missing" }, "No preview")));
  const open = fileLink(image.image, { newTab: true, class: "image-open", "aria-label": `Open ${imageName(image)} full size` }, thumb);
  return h("li", { class: "image-card", dataset: { imageId: image.image_id } },
    open,
    h("div", { class: "image-text" },
      image.brief ? h("p", { class: "brief" }, image.brief) : h("p", { class: "brief muted" }, "No brief"),
      image.tags.length ? h("ul", { class: "chips tags" }, image.tags.map((tag) => h("li", {},
        h("button", { type: "button", class: "tag", title: `Show only the images tagged ${tag}`,
          onclick: () => ctx.filter(tag) }, tag)))) : null,
      h("p", { class: "image-meta muted" }, `${image.width}×${image.height}`, image.external_id
        ? [" · ", h("code", {}, image.external_id)] : null, " · ", timeEl(image.created_at))),
    removeControls(image, ctx));
}

/**
 * The "Images" section of a library; refresh() reloads the page shown (after adds).
 * onChanged() after an image was removed.
 */
export function imageBrowser(library, { signal, onChanged }) {
  let page = 0;
  let tag = "";
  const seenTags = new Set();
  const tagInput = h("input", { type: "text", id: "images-tag", list: "images-tags", spellcheck: "false",
    autocomplete: "off", maxlength: "64" });
  const tagList = h("datalist", { id: "images-tags" });
  const clearFilter = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => ctx.filter("") }, "Show all");
  const filterForm = h("form", { class: "tag-filter", role: "search", "aria-label": "Images with a tag" },
    h("label", { for: tagInput.id }, "Tag"), tagInput, tagList,
    h("button", { type: "submit", class: "secondary" }, "Filter"), clearFilter);
  const status = h("p", { class: "visually-hidden", role: "status" });
  const summary = h("p", { class: "muted images-summary" });
  const holder = h("div", {});
  const root = h("section", { class: "library-images", "aria-labelledby": "images-title" },
    h("h2", { id: "images-title" }, "Images"), filterForm, status, summary, holder);

  const pagerNav = (data) => {
    const first = page * IMAGES_PAGE + 1;
    const last = page * IMAGES_PAGE + data.images.length;
    const go = (delta) => {
      page += delta;
      ctx.refresh().then(() => holder.querySelector(".image-grid a")?.focus());
    };
    return h("nav", { class: "pager", "aria-label": "Pages of images" },
      h("button", { type: "button", class: "secondary small", disabled: page === 0, onclick: () => go(-1) }, "← Previous"),
      h("span", {}, data.images.length ? `${first}–${last} of ${data.total}` : `none of ${data.total}`),
      h("button", { type: "button", class: "secondary small", disabled: last >= data.total, onclick: () => go(1) }, "Next →"));
  };

  const ctx = {
    library,
    say: (text) => {
      status.textContent = text;
    },
    filter: (value) => {
      tag = value.trim();
      tagInput.value = tag;
      page = 0;
      return ctx.refresh();
    },
    removed: async () => {
      await ctx.refresh();
      await onChanged?.();
    },
    async refresh() {
      let data;
      try {
        const query = `offset=${page * IMAGES_PAGE}&limit=${IMAGES_PAGE}${tag ? `&tag=${encodeURIComponent(tag)}` : ""}`;
        data = await api(`${imagesPath(library)}?${query}`, { signal });
        if (!data.images.length && page > 0 && data.total) { // the last image of the last page went
          page = Math.max(0, Math.ceil(data.total / IMAGES_PAGE) - 1);
          return ctx.refresh();
        }
      } catch (err) {
        if (signal.aborted) return undefined;
        fill(holder, errorBox(err.message));
        return undefined;
      }
      for (const image of data.images) for (const t of image.tags) seenTags.add(t);
      fill(tagList, [...seenTags].sort().map((t) => h("option", { value: t })));
      clearFilter.hidden = !tag;
      summary.textContent = tag
        ? `${data.total} image${data.total === 1 ? "" : "s"} tagged “${tag}”.`
        : `${data.total} image${data.total === 1 ? "" : "s"}, oldest first.`;
      fill(holder, data.total
        ? [h("ul", { class: "image-grid" }, data.images.map((image) => imageCard(image, ctx))), pagerNav(data)]
        : h("p", { class: "muted empty" }, tag ? "No image has this tag." : "No images yet: add some above."));
      return data;
    },
  };
  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.filter(tagInput.value);
  });
  fill(holder, loading("Loading images…"));
  return { root, refresh: () => ctx.refresh() };
}
