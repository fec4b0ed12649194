// Package profile is the authms profile service. It owns users' extended
// attributes (display name, locale, time zone) in its own database
// (authms_profile); its profiles table is the source of truth for them.
//
// It consumes identity.user.created from the IDENTITY stream: for every new
// user a projector creates the default profile (display name = the email's
// local part, locale "en", time zone "UTC") and, in the same transaction,
// records profile.profile.created. Profiles are changed through the
// ProfileService API (GetProfile, UpdateProfile), which records
// profile.profile.updated carrying the whole profile. Both events are
// published on the PROFILE stream; the aggregate type is "profile" and the
// aggregate id is the user id.
package profile
