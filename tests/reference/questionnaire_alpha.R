# Reference values for crtstats' questionnaire scoring (score_questionnaire) and scale
# alpha (questionnaire_alpha) from hand-computed totals and R's psych.
#
# Run from the project root:  Rscript tests/reference/questionnaire_alpha.R
# Writes tests/reference/questionnaire_alpha.json (the simulated items and every
# reference value, full precision). The Python tests read only the JSON; they never
# need R.
suppressPackageStartupMessages({
  library(psych)
  library(jsonlite)
})
set.seed(20140301)

# Items from one latent level per person: item j = latent + item shift + noise, rounded
# and clipped to the item range; `sign` -1 makes an item run the other way (reversed).
simulate <- function(n, k, lo, hi, centre, sign = rep(1, k)) {
  latent <- rnorm(n, 0, 1)
  sapply(seq_len(k), function(j) {
    x <- centre + sign[j] * (0.8 * latent) + rnorm(1, 0, 0.2) + rnorm(n, 0, 0.7)
    pmin(hi, pmax(lo, round(x)))
  })
}

alpha_of <- function(x) {
  a <- psych::alpha(as.data.frame(x), check.keys = FALSE, warnings = FALSE)
  list(raw_alpha = a$total$raw_alpha, std_alpha = a$total$std.alpha,
       drop_raw_alpha = a$alpha.drop$raw_alpha, drop_std_alpha = a$alpha.drop$std.alpha)
}

# ---- CSQ-8: 8 items 1-4, total 8-32; some items missing ---------------------------
csq <- simulate(160, 8, 1, 4, 3)
cells <- sample(160 * 8, 14)
for (cell in cells) csq[(cell - 1) %% 160 + 1, (cell - 1) %/% 160 + 1] <- NA
n_missing <- rowSums(is.na(csq))
csq_total <- ifelse(n_missing == 0, rowSums(csq), NA)
# proration with max_missing = 1: the mean of the scored items times 8
csq_prorated <- ifelse(n_missing <= 1, rowMeans(csq, na.rm = TRUE) * 8, NA)
csq_complete <- csq[n_missing == 0, ]

# ---- GHQ-12: 12 items 0-3; GHQ (0-0-1-1) and Likert (0-1-2-3) scorings --------------
ghq <- simulate(140, 12, 0, 3, 1)
ghq_coded <- ifelse(ghq >= 2, 1, 0)
ghq_total <- rowSums(ghq_coded)
likert_total <- rowSums(ghq)

# ---- a six-item 1-5 instrument with items 2 and 5 reversed (tests/scales key) -------
wb <- simulate(100, 6, 1, 5, 3, sign = c(1, -1, 1, 1, -1, 1))
wb_reversed <- wb
wb_reversed[, c(2, 5)] <- 1 + 5 - wb[, c(2, 5)]
wb_total <- rowSums(wb_reversed)

out <- list(
  csq8 = list(items = csq, total = csq_total, prorated_total = csq_prorated,
              n_missing = n_missing, alpha = alpha_of(csq_complete),
              n_complete = nrow(csq_complete)),
  ghq12 = list(items = ghq, ghq_total = ghq_total, likert_total = likert_total,
               case_4 = as.integer(ghq_total >= 4), case_3 = as.integer(ghq_total >= 3),
               alpha_likert = alpha_of(ghq), alpha_ghq = alpha_of(ghq_coded)),
  demo_wellbeing_v1 = list(items = wb, total = wb_total,
                           case_20 = as.integer(wb_total >= 20),
                           alpha = alpha_of(wb_reversed)),
  versions = list(R = R.version.string, psych = as.character(packageVersion("psych")))
)
writeLines(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE, pretty = FALSE),
           file.path("tests", "reference", "questionnaire_alpha.json"))
