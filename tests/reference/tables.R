# Reference values for crtstats.tables: descriptive summaries of the shipped example
# trial (crtstats/datasets/data/example_*.csv), computed independently in base R.
# Run from the project root:  Rscript tests/reference/tables.R
# Writes tests/reference/tables.json at full precision.
library(jsonlite)

data_dir <- file.path("crtstats", "datasets", "data")
rd <- function(name) read.csv(file.path(data_dir, paste0("example_", name, ".csv")),
                              stringsAsFactors = FALSE, na.strings = "")
teams <- rd("teams")
fidelity <- rd("fidelity")
admissions <- rd("admissions")
arms <- c("control", "intervention")
reviews <- c("baseline", "6m", "12m")
arm_of <- setNames(teams$arm, teams$team_id)

out <- list()

# -- flow ------------------------------------------------------------------------------
flow <- list()
for (a in arms) {
  f <- fidelity[arm_of[fidelity$team_id] == a, ]
  ad <- admissions[arm_of[admissions$team_id] == a, ]
  items <- grep("^item_", names(fidelity), value = TRUE)
  f12 <- f[f$review == "12m", ]
  flow[[a]] <- list(
    randomised = sum(teams$arm == a),
    reviewed_baseline = length(unique(f$team_id[f$review == "baseline"])),
    reviewed_6m = length(unique(f$team_id[f$review == "6m"])),
    reviewed_12m = length(unique(f$team_id[f$review == "12m"])),
    analysed_teams = length(unique(f12$team_id[complete.cases(f12[, items])])),
    users_pre = length(unique(ad$person_id[ad$period == "pre"])),
    users_follow_up = length(unique(ad$person_id[ad$period == "follow_up"]))
  )
}
out$flow <- flow

# -- baseline (pre period) -------------------------------------------------------------
pre <- admissions[admissions$period == "pre", ]
base <- list()
for (a in arms) {
  p <- pre[arm_of[pre$team_id] == a, ]
  ids <- teams$team_id[teams$arm == a]
  size <- sapply(ids, function(t) length(unique(p$person_id[p$team_id == t])))
  base[[a]] <- list(
    users = length(unique(p$person_id)),
    size_mean = mean(size), size_sd = sd(size),
    age_n = sum(!is.na(p$age)), age_mean = mean(p$age, na.rm = TRUE),
    age_sd = sd(p$age, na.rm = TRUE),
    female = sum(p$sex == "female", na.rm = TRUE), male = sum(p$sex == "male", na.rm = TRUE),
    admitted = sum(p$admitted == 1), bed_days_mean = mean(p$bed_days),
    bed_days_sd = sd(p$bed_days),
    readmitted = sum(p$readmitted == 1, na.rm = TRUE),
    readmitted_n = sum(!is.na(p$readmitted))
  )
}
out$baseline <- base

# -- fidelity by arm and review (no proration: NA when an item is missing) ------------
items <- sprintf("item_%02d", 1:39)
domains <- list(referrals_access = 1:10, content_delivery = 11:26,
                staffing_procedures = 27:36, location_timing = 37:39)
fidelity$total <- rowSums(fidelity[, items])          # NA if any item is missing
fidelity$mean_item <- fidelity$total / 39
for (d in names(domains)) {
  fidelity[[paste0(d, "_mean")]] <- rowMeans(fidelity[, items[domains[[d]]]])
}
fidelity$band <- ifelse(is.na(fidelity$total), NA,
                 ifelse(fidelity$total >= 156, "high",
                 ifelse(fidelity$total >= 117, "moderate", "low")))
fid <- list()
for (r in reviews) {
  for (a in arms) {
    f <- fidelity[fidelity$review == r & arm_of[fidelity$team_id] == a, ]
    entry <- list()
    for (v in c("total", "mean_item", paste0(names(domains), "_mean"))) {
      x <- f[[v]][!is.na(f[[v]])]
      entry[[v]] <- list(n = length(x), mean = mean(x), sd = sd(x))
    }
    entry$bands <- list(low = sum(f$band == "low", na.rm = TRUE),
                        moderate = sum(f$band == "moderate", na.rm = TRUE),
                        high = sum(f$band == "high", na.rm = TRUE))
    fid[[paste(r, a, sep = "/")]] <- entry
  }
}
out$fidelity_by_arm <- fid

# -- item change baseline -> 12m -------------------------------------------------------
b <- fidelity[fidelity$review == "baseline", c("team_id", items)]
e <- fidelity[fidelity$review == "12m", c("team_id", items)]
m <- merge(b, e, by = "team_id", suffixes = c(".from", ".to"))
change <- list()
for (it in items) {
  d <- m[[paste0(it, ".to")]] - m[[paste0(it, ".from")]]
  entry <- list()
  for (a in arms) {
    x <- d[arm_of[m$team_id] == a & !is.na(d)]
    entry[[a]] <- list(n = length(x), mean = mean(x), sd = sd(x))
  }
  change[[it]] <- entry
}
out$item_change <- change

write_json(out, file.path("tests", "reference", "tables.json"), digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
