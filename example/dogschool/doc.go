// Package dogschool holds the example applications of the tutorial: the
// DogSchool application with its Dog aggregate, the Counters process
// application that counts tricks with a Counter aggregate per trick, the
// DogSchool → Counters system, and the TrainingSchool application with a
// materialised-view projection that counts dogs and tricks.
package dogschool
